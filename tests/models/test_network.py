"""DualHRQNet: outputs, FiLM identity at init, components, configuration errors."""

import pytest
import torch

from dualhrq.config import model_sizes
from dualhrq.errors import ConfigError, DataError
from dualhrq.models.network import DualHRQNet

from .conftest import conditioner


@pytest.mark.parametrize("conditioning", ["none", "puzzle_id", "regime"])
def test_output_shapes_and_ranges(make_net, make_batch, conditioning):
    out = make_net(conditioning)(*make_batch(b=3))
    assert out.signal.shape == (3,) and out.forecast.shape == (3, 2)
    assert out.signal.abs().max() <= 1


@pytest.mark.parametrize("conditioning", ["puzzle_id", "regime"])
def test_untrained_conditioning_is_exactly_the_identity(make_net, make_batch, conditioning):
    net = make_net(conditioning)
    x, regime, symbol = make_batch()
    out = net(x, regime, symbol)
    signal, forecast, _ = net.heads(net.hrm(x, film=None)[1][:, -1])
    assert torch.equal(out.signal, signal) and torch.equal(out.forecast, forecast)


@pytest.mark.parametrize("conditioning", ["puzzle_id", "regime"])
def test_conditioning_acts_once_trained(make_net, make_batch, film_on, conditioning):
    net = make_net(conditioning)
    film_on(net)
    x, regime, symbol = make_batch()
    out = net(x, regime, symbol)
    assert not torch.allclose(out.forecast, net.heads(net.hrm(x)[1][:, -1])[1])


@pytest.mark.parametrize("conditioning", ["none", "puzzle_id", "regime"])
def test_components_partition_the_parameters(make_net, conditioning):
    net = make_net(conditioning)
    ids = [id(p) for m in net.components().values() for p in m.parameters()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {id(p) for p in net.parameters()}
    assert set(net.components()) == {"h_module", "l_module", "heads", "conditioning"}


def _kwargs(**overrides):
    net = model_sizes("hrm_tiny")["net"]
    kwargs = dict(n_features=5, n_regime_features=3, n_symbols=4, conditioner=conditioner("regime"), **net)
    for key, value in overrides.items():
        if key in ("h", "l"):
            kwargs[key] = {**net[key], **value}
        else:
            kwargs[key] = value
    return kwargs


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"h": {"dim": 30, "heads": 4}}, "net.h.dim"),  # not divisible
        ({"l": {"dim": 30, "heads": 2}}, "net.l.dim"),  # odd head size: RoPE needs pairs
        ({"l": {"layers": 0}}, "net.l.layers"),
        ({"h": {"ffn_hidden": -64}}, "net.h.ffn_hidden"),
        ({"h": {"dim": 32.0}}, "net.h.dim"),
        ({"h_cycles": 0}, "net.h_cycles"),
        ({"l_cycles": 0}, "net.l_cycles"),
        ({"n_features": 0}, "net.n_features"),
        ({"head_hidden": 0}, "net.head_hidden"),
        ({"rope_base": 0.0}, "net.rope_base"),
        ({"n_regime_features": 0}, "model/conditioning=regime needs regime features"),
        ({"conditioner": conditioner("regime_rag"), "n_regime_features": 0},
         "model/conditioning=regime_rag needs regime features"),
        ({"conditioner": conditioner("puzzle_id"), "n_symbols": 0}, "model/conditioning=puzzle_id"),
    ],
)
def test_impossible_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):  # relative to the model's config
        DualHRQNet(**_kwargs(**overrides))


def test_missing_level_key_is_named():
    kwargs = _kwargs()
    kwargs["h"] = {"dim": 32, "layers": 1, "heads": 2}
    with pytest.raises(ConfigError, match=r"^net\.h must have exactly the keys.*ffn_hidden"):
        DualHRQNet(**kwargs)


def test_wrong_feature_count_is_a_data_error(make_net, make_batch):
    x, regime, symbol = make_batch()
    # n_features comes from the data config's feature list, which the message names
    with pytest.raises(DataError, match=r"\[batch, seq_len, 5\] \(the data config's features\), got \[3, 10, 3\]"):
        make_net("none")(x[..., :3], regime, symbol)
