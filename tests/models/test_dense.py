"""Dense supervision in the model: causal per-bar FiLM, the loss at every supervised bar against the backtest's
replay, and the settings it refuses."""

from functools import partial

import numpy as np
import polars as pl
import pytest
import torch

from dualhrq.config import model_sizes
from dualhrq.errors import ConfigError
from dualhrq.market.backtest import SignalBacktest
from dualhrq.models.lit_module import HRMLitModule
from dualhrq.models.network import DualHRQNet, NetOutput
from dualhrq.models.objective import mean_variance
from dualhrq.models.supervision import Prediction, Supervision
from dualhrq.models.transformer import TransformerNet

from .conftest import N_FEATURES, N_REGIME, N_SYMBOLS, conditioner, perturb_film, tiny_net

COST_BPS = 2.0
LOSS = {"forecast_weight": 0.0, "utility_weight": 1.0, "cost_bps": COST_BPS, "risk_aversion": 0.3}


def module(dense: bool = True, net=DualHRQNet, kind: str = "regime", prediction=None, **supervision):
    sizes = model_sizes("hrm_tiny" if net is DualHRQNet else "transformer_tiny")
    return HRMLitModule(net=partial(net, **sizes["net"]), conditioning={"module": conditioner(kind)},
                        optimizer=partial(torch.optim.AdamW, lr=1e-3), loss=LOSS, budget=sizes["budget"],
                        n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS, target_scale=0.01,
                        supervision={"segments": 1, "dense": dense, **supervision}, prediction=prediction)


def inputs(b: int = 2, t: int = 12, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, t, N_FEATURES, generator=g), torch.randn(b, t, N_REGIME, generator=g),
            torch.randint(0, N_SYMBOLS, (b,), generator=g))


def test_each_bar_depends_on_its_own_and_earlier_bars_only():
    net = tiny_net("regime", dense=True)
    perturb_film(net)
    net.eval()
    x, regime, symbol = inputs()
    p = 6
    later_x, later_regime = x.clone(), regime.clone()
    later_x[:, p + 1:] += 3.0
    later_regime[:, p + 1:] -= 2.0
    with torch.no_grad():
        a, b = net(x, regime, symbol), net(later_x, later_regime, symbol)
    torch.testing.assert_close(a.dense_signal[:, :p + 1], b.dense_signal[:, :p + 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(a.dense_forecast[:, :p + 1], b.dense_forecast[:, :p + 1], rtol=0, atol=1e-6)
    assert (a.dense_signal[:, p + 1:] - b.dense_signal[:, p + 1:]).abs().min() > 0  # later bars did change
    # the decision is the last bar's, and FiLM of bar p is bar p's regime alone
    torch.testing.assert_close(a.signal, a.dense_signal[:, -1])
    gamma, beta = net.conditioning.film(net.conditioning.encode(regime, symbol).context)
    one_gamma, _ = net.conditioning.film(net.conditioning.encode(regime[:, p], symbol).context)
    assert gamma.shape == (2, 12, 2, 48) and beta.shape == gamma.shape
    torch.testing.assert_close(gamma[:, p], one_gamma)


def test_one_film_from_the_decision_bar_would_leak_a_later_regime_into_earlier_bars():
    net = tiny_net("regime", dense=True)
    perturb_film(net)
    net.eval()
    x, regime, symbol = inputs()
    with torch.no_grad():
        a, b = net(x, regime[:, -1], symbol), net(x, regime[:, -1] + 2.0, symbol)
    assert (a.dense_signal[:, 0] - b.dense_signal[:, 0]).abs().max() > 1e-4


def test_a_non_dense_net_is_unchanged_by_the_per_bar_film_path():
    net = tiny_net("regime")
    perturb_film(net)
    x, regime, symbol = inputs()
    gamma, beta = net.conditioning.film(net.conditioning.encode(regime[:, -1], symbol).context)
    per_bar = (gamma[:, None].expand(-1, 12, -1, -1), beta[:, None].expand(-1, 12, -1, -1))
    with torch.no_grad():
        _, z_window, _ = net.hrm(x, (gamma, beta))
        _, z_bars, _ = net.hrm(x, per_bar)
    torch.testing.assert_close(z_window, z_bars, rtol=0, atol=0)


def dense_batch(seed: int = 0, seq_len: int = 6, bars: int = 3, n_windows: int = 3):
    """Two symbols, each ``n_windows`` windows whose last ``bars`` bars tile consecutive dates; symbol 1 has no
    sample at its first bar (masked)."""
    rng = np.random.default_rng(seed)
    n = 2 * n_windows
    symbol = np.repeat([0, 1], n_windows)
    end = np.tile(np.arange(n_windows) * bars + bars - 1, 2)  # date index of each window's last bar
    date = end[:, None] - np.arange(seq_len)[::-1][None, :]
    supervised = np.arange(seq_len)[None, :] >= seq_len - bars
    supervised = supervised & ~((symbol[:, None] == 1) & (date == 0))
    return {"symbol": torch.from_numpy(symbol),
            "supervised": torch.from_numpy(np.broadcast_to(supervised, (n, seq_len)).copy()),
            "date_seq": torch.from_numpy(date * 86_400_000_000 + 10**15),
            "next_return_seq": torch.from_numpy(rng.normal(0.0003, 0.01, (n, seq_len))).float(),
            "target_z_seq": torch.from_numpy(rng.normal(size=(n, seq_len))).float(),
            "target_z": torch.zeros(n), "next_return": torch.zeros(n), "date": torch.zeros(n)}


def test_the_dense_loss_is_the_backtests_replay_of_every_supervised_bar():
    lit = module()
    batch = dense_batch()
    g = torch.Generator().manual_seed(4)
    signal = torch.rand(batch["supervised"].shape, generator=g) * 2 - 1
    forecast = torch.randn(*signal.shape, 2, generator=g)
    out = NetOutput(signal=signal[:, -1], forecast=forecast[:, -1], dense_signal=signal, dense_forecast=forecast)
    terms = lit.loss_terms(out, batch)
    mask = batch["supervised"].numpy()
    assert float(terms["supervised_bars"]) == mask.sum() == 2 * 9 - 1
    frame = pl.DataFrame({"ts": batch["date_seq"].numpy()[mask],
                          "symbol": np.broadcast_to(batch["symbol"].numpy()[:, None], mask.shape)[mask].astype(str),
                          "signal": signal.numpy()[mask].astype(np.float64),
                          "next_return": batch["next_return_seq"].numpy()[mask].astype(np.float64)})
    net = SignalBacktest(cost_bps=COST_BPS).run(frame.sample(fraction=1.0, shuffle=True, seed=1)).net
    assert len(net) == 9
    expected = mean_variance(torch.tensor(np.asarray(net)) / 0.01, LOSS["risk_aversion"])
    assert float(terms["utility"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(terms["loss"]) == pytest.approx(-float(expected), rel=1e-5)


def test_without_bar_labels_the_loss_is_the_decision_bars():
    lit = module()
    batch = dense_batch()
    del batch["supervised"]
    signal = torch.full(batch["date_seq"].shape, 0.5)
    out = NetOutput(signal=signal[:, -1], forecast=torch.zeros(6, 2), dense_signal=signal,
                    dense_forecast=torch.zeros(6, 6, 2))
    assert "supervised_bars" not in lit.loss_terms(out, batch)


def test_supervised_bars_count_from_min_context():
    assert Supervision(dense=True, min_context=8).bars(32) == 24
    assert Supervision(dense=True, min_context=0).bars(32) == 32
    assert Supervision(dense=False).bars(32) == 0
    with pytest.raises(ConfigError, match=r"^supervision\.min_context=32 leaves no bar"):
        Supervision(dense=True, min_context=32).bars(32)


def test_strides_up_to_the_supervised_bars_are_allowed_and_no_more():
    dense = Supervision(dense=True, min_context=8)
    Prediction(stride=24).check(dense, 32)
    with pytest.raises(ConfigError, match=r"^prediction\.stride=25 is more than the 24 bars") as err:
        Prediction(stride=25).check(dense, 32)
    assert err.value.field == "prediction.stride"
    Prediction(stride=1).check(Supervision(), 32)
    with pytest.raises(ConfigError, match=r"^prediction\.stride=2 reads 2 bars.*supervision\.dense=true"):
        Prediction(stride=2).check(Supervision(), 32)


@pytest.mark.parametrize("kwargs,field,text", [
    ({"net": TransformerNet}, "supervision.dense", "TransformerNet decides on the last bar only"),
    ({"kind": "regime_rag"}, "supervision.dense", "RegimeRAGConditioner"),
    ({"dense": False, "prediction": {"stride": 4}}, "prediction.stride", "model.supervision.dense=true"),
    ({"min_context": -1}, "supervision.min_context", "non-negative"),
    ({"dense": "yes"}, "supervision.dense", "true or false"),
    ({"prediction": {"stride": 0}}, "prediction.stride", "positive"),
])
def test_unsupported_dense_settings_are_refused_naming_the_field(kwargs, field, text):
    with pytest.raises(ConfigError, match=text) as err:
        module(**kwargs)
    assert err.value.field == field


def test_a_dense_module_builds_a_dense_net_and_a_plain_one_does_not():
    assert module(dense=True).net.dense and not module(dense=False).net.dense
    assert module(dense=True, kind="puzzle_id").net.dense


def test_each_window_keeps_every_bars_outputs_from_its_own_halting_segment():
    sizes = model_sizes("hrm_tiny")
    torch.manual_seed(0)
    lit = HRMLitModule(net=partial(DualHRQNet, **sizes["net"]), conditioning={"module": conditioner("regime")},
                       optimizer=partial(torch.optim.AdamW, lr=1e-3), loss=LOSS, budget=sizes["budget"],
                       n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS,
                       supervision={"segments": 3, "dense": True, "min_context": 2},
                       act={"enabled": True, "halt_max_steps": 3})
    perturb_film(lit.net)
    with torch.no_grad():  # a Q head that halts some windows early
        lit.net.heads.q.weight.normal_(0.0, 2.0, generator=torch.Generator().manual_seed(1))
    lit.eval()
    x, regime, symbol = inputs(b=16)
    batch = {"x": x, "regime": regime[:, -1], "regime_seq": regime, "symbol": symbol}
    with torch.no_grad():
        out = lit(batch)
        segments = [lit.net(x, regime, symbol)]
        for _ in range(2):
            segments.append(lit.net(x, regime, symbol, segments[-1].carry))
    assert len(set(out.steps.tolist())) > 1
    for i, step in enumerate(out.steps.long().tolist()):
        torch.testing.assert_close(out.dense_signal[i], segments[step - 1].dense_signal[i])
        torch.testing.assert_close(out.dense_forecast[i], segments[step - 1].dense_forecast[i])
    torch.testing.assert_close(out.signal, out.dense_signal[:, -1])
