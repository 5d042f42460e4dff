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


def test_an_external_series_is_read_on_each_paths_dates_and_refused_where_it_has_none():
    import pytest

    from dualhrq.errors import DataError

    cv = CombinatorialPurgedKFold(n_groups=4, n_test_groups=2, purge_days=0, embargo_days=0)
    preds, _ = _predictions(cv)
    index = pl.DataFrame({"ts": DATES, "next_return": np.linspace(-0.02, 0.02, DATES.size)})
    out = path_returns(preds, cv, DATES, list(range(cv.get_n_splits())), SignalBacktest(cost_bps=5.0),
                       external={"index": index})
    for p in range(3):
        got = out.filter((pl.col("path") == p) & (pl.col("strategy") == "index")).sort("ts")
        assert got["ts"].to_list() == DATES.tolist()
        np.testing.assert_array_equal(got["net"].to_numpy(), np.linspace(-0.02, 0.02, DATES.size))  # no costs
    # a partial path takes the series on its own dates only
    part = path_returns(preds.filter(pl.col("fold") == 0), cv, DATES, [0], SignalBacktest(),
                        external={"index": index})
    assert part.filter(pl.col("strategy") == "index")["ts"].to_list() == \
        part.filter(pl.col("strategy") == "model")["ts"].to_list()
    short = index.with_columns(pl.when(pl.col("ts") == DATES[4]).then(None).otherwise(pl.col("next_return"))
                               .alias("next_return"))
    with pytest.raises(DataError, match=r"^baseline 'index' has no return for 1 of the 12 out-of-sample dates "
                                        r"\(first 2024-01-05"):
        path_returns(preds, cv, DATES, list(range(cv.get_n_splits())), SignalBacktest(), external={"index": short})
