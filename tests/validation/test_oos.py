"""CPCV path returns: every path covers every date once, from the fold the AFML path table names."""

import numpy as np
import polars as pl

from dualhrq.market.backtest import SignalBacktest
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.oos import path_returns

DATES = np.arange("2024-01-01", "2024-01-13", dtype="datetime64[D]").astype("datetime64[us]")  # 12 dates


def _predictions(cv):
    """Each fold predicts its test dates with signal = fold / 10, so the fold behind a return is readable."""
    groups = cv.groups(DATES)
    rng = np.random.default_rng(0)
    next_return = rng.normal(0, 0.01, DATES.size)
    frames = []
    for f in range(cv.get_n_splits()):
        test = np.isin(groups, cv.test_groups(f))
        frames.append(pl.DataFrame({"fold": f, "ts": DATES[test], "symbol": "A", "signal": f / 10,
                                    "next_return": next_return[test], "baseline:buy_and_hold": 1.0}))
    return pl.concat(frames), next_return


def test_paths_follow_the_path_table_and_baselines_ride_along():
    cv = CombinatorialPurgedKFold(n_groups=4, n_test_groups=2, purge_days=0, embargo_days=0)
    preds, next_return = _predictions(cv)
    out = path_returns(preds, cv, DATES, list(range(cv.get_n_splits())), SignalBacktest(cost_bps=0.0))
    assert sorted(out["path"].unique()) == [0, 1, 2]  # C(3, 1) paths
    table, groups = cv.path_folds(), cv.groups(DATES)
    for p in range(3):
        model = out.filter((pl.col("path") == p) & (pl.col("strategy") == "model")).sort("ts")
        assert model["ts"].to_list() == DATES.tolist()
        expected = table[groups, p] / 10 * next_return  # without costs: position x return
        np.testing.assert_allclose(model["net"].to_numpy(), expected)
        bh = out.filter((pl.col("path") == p) & (pl.col("strategy") == "buy_and_hold")).sort("ts")
        np.testing.assert_allclose(bh["net"].to_numpy(), next_return)


def test_a_subset_of_folds_gives_one_partial_path():
    cv = CombinatorialPurgedKFold(n_groups=4, n_test_groups=1, purge_days=0, embargo_days=0)
    preds, _ = _predictions(cv)
    out = path_returns(preds.filter(pl.col("fold").is_in([0, 2])), cv, DATES, [0, 2], SignalBacktest())
    assert out["path"].unique().to_list() == [0]
    assert out.filter(pl.col("strategy") == "model").height == 6  # groups 0 and 2, three dates each
