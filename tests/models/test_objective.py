"""The training objective against the backtest it must match, and against hand-worked figures."""

import math

import numpy as np
import polars as pl
import pytest
import torch

from dualhrq.errors import ConfigError
from dualhrq.market.backtest import SignalBacktest
from dualhrq.models.objective import TradingObjective, mean_variance, portfolio_returns, trading_loss

COST_BPS = 2.5


def path(seed: int = 0, n_dates: int = 12, symbols: int = 3) -> dict[str, torch.Tensor]:
    """A batch of contiguous dates in shuffled order; symbol 2 is missing on dates 4 and 5."""
    rng = np.random.default_rng(seed)
    date, symbol = np.meshgrid(np.arange(n_dates), np.arange(symbols), indexing="ij")
    keep = ~((symbol == 2) & np.isin(date, [4, 5]))
    date, symbol = date[keep], symbol[keep]
    order = rng.permutation(len(date))
    return {"date": torch.from_numpy(date[order] * 86_400_000_000 + 10**15),
            "symbol": torch.from_numpy(symbol[order]),
            "signal": torch.from_numpy(rng.uniform(-1, 1, len(date))[order]),
            "next_return": torch.from_numpy(rng.normal(0.0005, 0.01, len(date))[order]),
            "target_z": torch.from_numpy(rng.normal(size=len(date))[order])}


def backtest(batch: dict[str, torch.Tensor], signal: torch.Tensor | None = None):
    frame = pl.DataFrame({"ts": batch["date"].numpy(), "symbol": batch["symbol"].numpy().astype(str),
                          "signal": (batch["signal"] if signal is None else signal).numpy(),
                          "next_return": batch["next_return"].numpy()})
    return SignalBacktest(cost_bps=COST_BPS).run(frame)


def replay(batch: dict[str, torch.Tensor]):
    return portfolio_returns(batch["signal"], batch["next_return"], batch["symbol"], batch["date"], COST_BPS)


def test_training_cost_and_returns_of_a_position_path_equal_the_backtests():
    batch = path()
    ours, theirs = replay(batch), backtest(batch).returns
    np.testing.assert_allclose(ours.cost.numpy(), theirs["cost"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.gross.numpy(), theirs["gross"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.net.numpy(), theirs["net"].to_numpy(), rtol=1e-12)


def test_costs_fall_on_position_changes_hand_worked():
    date, symbol, ret = torch.arange(4), torch.zeros(4, dtype=torch.long), torch.zeros(4)
    long = portfolio_returns(torch.ones(4), ret, symbol, date, cost_bps=1.0)
    flip = portfolio_returns(torch.tensor([1.0, -1.0, 1.0, -1.0]), ret, symbol, date, cost_bps=1.0)
    half = portfolio_returns(torch.tensor([0.5, 0.5, -0.25, 0.0]), ret, symbol, date, cost_bps=1.0)
    np.testing.assert_allclose(long.cost.numpy(), [1e-4, 0, 0, 0], atol=1e-12)  # entry from flat only
    np.testing.assert_allclose(flip.cost.numpy(), [1e-4, 2e-4, 2e-4, 2e-4], atol=1e-12)
    np.testing.assert_allclose(half.cost.numpy(), [0.5e-4, 0, 0.75e-4, 0.25e-4], atol=1e-12)


def test_per_date_portfolio_return_is_the_mean_over_the_symbols_of_the_date_hand_worked():
    out = portfolio_returns(torch.tensor([1.0, -0.5, 0.5]), torch.tensor([0.02, 0.04, -0.01]),
                            torch.tensor([0, 1, 0]), torch.tensor([7, 7, 8]), cost_bps=0.0)
    np.testing.assert_allclose(out.gross.numpy(), [(0.02 - 0.02) / 2, -0.005], atol=1e-7)


def test_the_batch_sharpe_is_the_backtests_per_date_sharpe_on_those_dates():
    batch = path(seed=3)
    terms = trading_loss(batch["signal"], torch.zeros(len(batch["signal"]), 2), batch,
                         TradingObjective(cost_bps=COST_BPS), target_scale=0.01)
    assert float(terms["sharpe"]) * math.sqrt(252) == pytest.approx(backtest(batch).sharpe, rel=1e-9)


@pytest.mark.parametrize("benchmark", [None, "buy_and_hold"])
def test_the_utility_is_mean_variance_of_the_backtests_per_date_net_return(benchmark):
    batch, scale, aversion = path(seed=4), 0.012, 0.7
    objective = TradingObjective(cost_bps=COST_BPS, risk_aversion=aversion, benchmark=benchmark,
                                 forecast_weight=0.0, utility_weight=1.0)
    terms = trading_loss(batch["signal"], torch.zeros(len(batch["signal"]), 2), batch, objective, scale)
    net = backtest(batch).net
    if benchmark is not None:
        net = net - backtest(batch, torch.ones_like(batch["signal"])).net
    r = net / scale
    assert float(terms["utility"]) == pytest.approx(r.mean() - aversion / 2 * r.var(), rel=1e-9)
    assert float(terms["loss"]) == pytest.approx(-float(terms["utility"]), rel=1e-12)
    expected_active = batch["signal"].mean() - (1.0 if benchmark else 0.0)
    assert float(terms["active_position"]) == pytest.approx(float(expected_active))


def test_the_utility_fixes_the_position_size_where_the_sharpe_ratio_does_not():
    """A constant position w in one asset of per-date mean m and variance v (target-std units): mean-variance
    peaks at w = m / (risk_aversion * v); the Sharpe ratio is the same for every w > 0."""
    rng = np.random.default_rng(5)
    r = torch.from_numpy(rng.normal(0.05, 1.0, 2000))
    m, v, aversion = float(r.mean()), float(r.var(unbiased=False)), 0.2
    grid = torch.linspace(0.01, 1.0, 991)
    utility = torch.stack([mean_variance(w * r, aversion) for w in grid])
    assert float(grid[utility.argmax()]) == pytest.approx(m / (aversion * v), abs=0.001)
    sharpe = torch.stack([(w * r).mean() / (w * r).std() for w in grid])
    torch.testing.assert_close(sharpe, torch.full_like(sharpe, float(sharpe[0])))


def test_active_return_of_always_long_is_zero_after_the_common_entry():
    batch = path(seed=6)
    long = torch.ones_like(batch["signal"])
    terms = trading_loss(long, torch.zeros(len(long), 2), batch,
                         TradingObjective(benchmark="buy_and_hold", forecast_weight=0.0), target_scale=0.01)
    assert float(terms["utility"]) == 0.0
    assert float(terms["active_position"]) == 0.0


@pytest.mark.parametrize(("settings", "field"), [({"benchmark": "momentum"}, "loss.benchmark"),
                                                  ({"risk_aversion": 0.0}, "loss.risk_aversion"),
                                                  ({"cost_bps": -1.0}, "loss.cost_bps"),
                                                  ({"utility": "sharpe"}, "loss")])
def test_bad_objective_settings_are_refused_naming_the_field(settings, field):
    with pytest.raises(ConfigError) as err:
        TradingObjective.from_config(settings)
    assert err.value.field == field
