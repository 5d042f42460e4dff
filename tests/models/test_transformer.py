"""The transformer_27m baseline: its size, causality and parts."""

import torch

from dualhrq.config import model_sizes
from dualhrq.features.engine import FeatureSpec, feature_names
from dualhrq.models.params import check_budget, count_parameters
from dualhrq.models.transformer import TransformerNet

from .conftest import N_FEATURES, N_REGIME, N_SYMBOLS, batch, conditioner

N_INPUTS, N_REGIME_DAILY = (len(c) for c in feature_names(FeatureSpec()))


def test_transformer_27m_counts_are_pinned_and_within_budget():
    size = model_sizes("transformer_27m")
    net = TransformerNet(n_features=N_INPUTS, n_regime_features=N_REGIME_DAILY, n_symbols=2,
                         conditioner=conditioner("regime", "transformer_27m"), **size["net"])
    counts = count_parameters(net)
    # 6 blocks x (4 x 576^2 attention + 3 x 576 x 1792 SwiGLU) + 21 x 576 embedding
    assert counts["trunk"] == 6 * (4 * 576**2 + 3 * 576 * 1792) + 21 * 576 == 26_554_176
    assert counts == {"trunk": 26_554_176, "heads": 296_195, "conditioning": 285_796, "total": 27_136_167}
    assert check_budget(counts, size["budget"]) == []


def _tiny(**kw) -> TransformerNet:
    torch.manual_seed(0)
    return TransformerNet(n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS,
                          conditioner=conditioner("regime"),
                          trunk={"dim": 32, "layers": 2, "heads": 2, "ffn_hidden": 64}, cond_hidden=8, **kw)


def test_decision_at_t_ignores_later_bars():
    net = _tiny().eval()
    x, regime, symbol = batch(t=12)
    with torch.no_grad():
        cut = net(x[:, :7], regime, symbol)
        x2 = x.clone()
        x2[:, 7:] += 3.0
        assert torch.allclose(net(x2[:, :7], regime, symbol).signal, cut.signal)
        assert not torch.allclose(net(x2, regime, symbol).signal, net(x, regime, symbol).signal)


def test_every_parameter_learns_and_components_partition_them():
    net = _tiny(norm="pre")
    with torch.no_grad():
        net.conditioning.film.net[-1].weight.normal_(0, 0.1)  # FiLM starts as the identity
    x, regime, symbol = batch()
    out = net(x, regime, symbol)
    (out.signal.sum() + out.forecast.square().sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    counts = count_parameters(net)
    assert counts["total"] == sum(p.numel() for p in net.parameters())
