from datetime import date, datetime

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.portfolio.allocation import FixedWeights, InverseVolatility, RiskBudgeting
from dualhrq.portfolio.integrator import Integrator, Rebalance


def _trading_days(start: date, end: date, holidays: tuple[date, ...] = ()) -> pl.Series:
    days = pl.date_range(start, end, "1d", eager=True)
    days = days.filter((days.dt.weekday() <= 5) & ~days.is_in(list(holidays)))
    return days.cast(pl.Datetime("us")).alias("ts")


def _books(n: int, k: int = 3, seed: int = 11) -> pl.DataFrame:
    ts = _trading_days(date(2023, 1, 2), date(2024, 12, 31))[:n]
    cov = (np.array([[1.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 1.0]]) * np.outer([1, 2, 3], [1, 2, 3]))[:k, :k]
    r = np.random.default_rng(seed).multivariate_normal(np.full(k, 2e-4), cov * 1e-4, size=n)
    return pl.DataFrame({"ts": ts, **{f"book_{j}": r[:, j] for j in range(k)}})


def _shares(w: np.ndarray, s: np.ndarray) -> np.ndarray:
    return w * (s @ w) / (w @ s @ w)


def test_three_days_by_hand_with_the_band_inclusive():
    books = pl.DataFrame({"ts": [datetime(2024, 1, 2), datetime(2024, 1, 3), datetime(2024, 1, 4)],
                          "a": [0.5, 0.0, 0.1], "b": [0.0, 0.4999, -0.1]})
    result = Integrator(FixedWeights((0.5, 0.5)), Rebalance(calendar=None, drift_band=0.1), cost_bps=10.0,
                        min_history=10).run(books)
    # day 0: equal weights bought from cash, 10 bps of a traded weight of 1
    # close of day 0: weights drift to (0.75, 0.5) / 1.25 = (0.6, 0.4), exactly the band away: rebalance
    # close of day 1: (0.5, 0.74995) / 1.24995, 0.09998 away from 0.5, just inside the band: no rebalance
    w2 = np.array([0.5, 0.74995]) / 1.24995
    expected_w = np.array([[0.5, 0.5], [0.5, 0.5], w2])
    expected_gross = [0.25, 0.5 * 0.4999, 0.1 * w2[0] - 0.1 * w2[1]]
    expected_cost = [10e-4 * 1.0, 10e-4 * (0.1 + 0.1), 0.0]
    assert result.weights.select("a", "b").to_numpy() == pytest.approx(expected_w, abs=1e-15)
    assert result.returns["gross"].to_list() == pytest.approx(expected_gross, abs=1e-15)
    assert result.returns["cost"].to_list() == pytest.approx(expected_cost, abs=1e-15)
    assert result.returns["net"].to_list() == pytest.approx([0.249, 0.24995 - 0.0002, expected_gross[2]], abs=1e-15)
    assert result.rebalances.rows() == [(datetime(2024, 1, 2), "initial"), (datetime(2024, 1, 3), "drift_band")]
    assert result.risk_contributions.row(0)[1:] == (None, None)  # nothing known before the first day


def test_the_allocator_takes_over_after_min_history():
    books = pl.DataFrame({"ts": [datetime(2024, 1, 2), datetime(2024, 1, 3), datetime(2024, 1, 4)],
                          "a": [0.02, -0.01, 0.03], "b": [0.0, 0.01, -0.02]})
    result = Integrator(FixedWeights((0.8, 0.2)), Rebalance(calendar=None), cost_bps=5.0, min_history=2).run(books)
    drifted = np.array([0.5 * 1.02, 0.5]) / 1.01  # day 0's equal weights through day 0
    drifted = drifted * np.array([0.99, 1.01]) / (1 + drifted @ [-0.01, 0.01])  # and day 1
    assert result.weights.row(2)[1:] == pytest.approx((0.8, 0.2), abs=1e-15)
    assert result.returns["cost"][2] == pytest.approx(5e-4 * np.abs(np.array([0.8, 0.2]) - drifted).sum(), abs=1e-15)
    assert result.returns["net"][2] == pytest.approx(0.8 * 0.03 + 0.2 * -0.02 - result.returns["cost"][2], abs=1e-15)
    assert result.rebalances["reason"].to_list() == ["initial", "min_history"]
    rc = result.risk_contributions.row(1)[1:]
    s = np.cov(np.array([[0.02, 0.0], [-0.01, 0.01]]), rowvar=False, ddof=1)
    assert rc == pytest.approx(tuple(_shares(np.array([0.8, 0.2]), s)), abs=1e-12)


def test_weights_are_decided_from_the_past_only():
    books = _books(110)
    integrator = Integrator(RiskBudgeting(window=30, budget=(0.5, 0.3, 0.2)),
                            Rebalance(calendar="monthly", drift_band=0.05), cost_bps=2.0, min_history=30)
    base = integrator.run(books)
    r = books.drop("ts").to_numpy()
    w = base.weights.drop("ts").to_numpy()
    for t in (29, 30, 90):
        rng = np.random.default_rng(t)
        later = pl.int_range(pl.len()) > t
        changed = books.with_columns(pl.when(later).then(pl.col(c) + rng.normal(0, 0.02)).otherwise(pl.col(c))
                                     for c in ("book_0", "book_1", "book_2"))
        other = integrator.run(changed)
        assert np.array_equal(other.weights.drop("ts").to_numpy()[:t + 2], w[:t + 2])
        assert other.rebalances.filter(pl.col("ts") <= books["ts"][t + 1]).equals(
            base.rebalances.filter(pl.col("ts") <= books["ts"][t + 1]))
        assert not np.array_equal(other.weights.drop("ts").to_numpy()[t + 2], w[t + 2])  # day t+1 moves them
    # between rebalances the weights drift with the books; each day's net is w'r - cost
    rebalanced = set(base.rebalances["ts"].to_list())
    for t in range(1, r.shape[0]):
        if books["ts"][t] not in rebalanced:
            assert w[t] == pytest.approx(w[t - 1] * (1 + r[t - 1]) / (1 + w[t - 1] @ r[t - 1]), abs=1e-14)
    assert base.returns["net"].to_numpy() == pytest.approx((w * r).sum(axis=1) - base.returns["cost"].to_numpy(),
                                                           abs=1e-16)


def test_monthly_and_weekly_calendars_start_each_period():
    ts = _trading_days(date(2024, 1, 2), date(2024, 6, 28), holidays=(date(2024, 4, 1), date(2024, 3, 4)))
    books = pl.DataFrame({"ts": ts, "a": np.linspace(-0.01, 0.01, ts.len()), "b": 0.001})
    frame = pl.DataFrame({"ts": ts})
    for calendar, key in (("monthly", pl.col("ts").dt.month()), ("weekly", pl.col("ts").dt.week())):
        result = Integrator(FixedWeights((0.5, 0.5)), Rebalance(calendar=calendar), min_history=2).run(books)
        firsts = frame.group_by(key.alias("period")).agg(pl.col("ts").min()).sort("ts")["ts"].to_list()[1:]
        by_calendar = result.rebalances.filter(pl.col("reason").str.contains("calendar"))["ts"].to_list()
        assert by_calendar == firsts
    assert datetime(2024, 4, 2) in firsts and datetime(2024, 3, 5) in firsts  # the Mondays off


def test_regime_changes_trigger_a_rebalance_the_next_day():
    ts = _trading_days(date(2024, 1, 2), date(2024, 1, 17))
    books = pl.DataFrame({"ts": ts, "a": 0.01, "b": -0.005})
    planted = [None, None, "low_vol", "low_vol", "high_vol", "high_vol", "high_vol", "crisis", "crisis",
               "low_vol", "low_vol", "low_vol"]
    regime = pl.DataFrame({"ts": ts, "regime": planted})
    result = Integrator(FixedWeights((0.5, 0.5)), Rebalance(calendar=None, on_regime_change=True),
                        min_history=50).run(books, regime)
    # changes seen at the closes of days 4, 7 and 9 (None -> low_vol is not a change)
    assert result.rebalances["ts"].to_list() == [ts[0], ts[5], ts[8], ts[10]]
    assert result.rebalances["reason"].to_list() == ["initial"] + ["regime_change"] * 3
    # a regime frame listing only the days it changes gives the same answer (the latest known one counts)
    sparse = regime.filter(pl.col("regime").ne_missing(pl.col("regime").shift(1)))
    assert Integrator(FixedWeights((0.5, 0.5)), Rebalance(calendar=None, on_regime_change=True),
                      min_history=50).run(books, sparse).rebalances.equals(result.rebalances)


def test_the_budget_in_force_follows_the_regime():
    books = _books(130)
    n = books.height
    planted = ["low_vol"] * 60 + ["high_vol"] * 20 + ["crisis"] * (n - 80)
    regime = pl.DataFrame({"ts": books["ts"], "regime": planted})
    budgets = {"low_vol": (0.6, 0.3, 0.1), "crisis": (0.1, 0.3, 0.6)}
    result = Integrator(RiskBudgeting(window=30), Rebalance(calendar="weekly", on_regime_change=True), cost_bps=0.0,
                        min_history=30, regime_budgets=budgets).run(books, regime)
    r = books.drop("ts").to_numpy()
    w = result.weights.drop("ts").to_numpy()
    day = {ts: i for i, ts in enumerate(books["ts"].to_list())}
    checked = set()
    for ts, reason in result.rebalances.rows():
        t = day[ts]
        if t < 30:
            continue
        expected = np.array(budgets.get(planted[t - 1], (1 / 3, 1 / 3, 1 / 3)))  # high_vol: the allocator's own
        shares = _shares(w[t], np.cov(r[t - 30:t], rowvar=False, ddof=1))
        assert np.max(np.abs(shares - expected)) < 1e-6
        reported = result.risk_contributions.filter(pl.col("ts") == ts).drop("ts").row(0)
        assert reported == pytest.approx(tuple(shares), abs=1e-12)
        checked.add(planted[t - 1])
        if t in (61, 81):
            assert "regime_change" in reason
    assert checked == {"low_vol", "high_vol", "crisis"}


def test_missing_days_count_as_zero_returns():
    books = _books(60, k=2)
    gaps = books.with_columns(book_1=pl.when(pl.int_range(pl.len()) % 7 == 3).then(None).otherwise(pl.col("book_1")))
    zeros = gaps.with_columns(pl.col("book_1").fill_null(0.0))
    integrator = Integrator(InverseVolatility(window=20), Rebalance(calendar="weekly"), min_history=20)
    a, b = integrator.run(gaps), integrator.run(zeros)
    assert a.weights.equals(b.weights) and a.returns.equals(b.returns)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Integrator(RiskBudgeting(20), regime_budgets={"crisis": (0.6, 0.6)}),
     r"^regime_budgets\.crisis must be a set of entries summing to 1"),
    (lambda: Integrator(RiskBudgeting(20), regime_budgets={"crisis": (1.2, -0.2)}),
     r"^regime_budgets\.crisis must be non-negative in every entry"),
    (lambda: Integrator(FixedWeights((1.2, -0.2))), r"^weights must be non-negative in every entry"),
    (lambda: Integrator(RiskBudgeting(20), regime_budgets={"bear": (0.5, 0.5)}),
     r"^regime_budgets must be keys among \['low_vol', 'high_vol', 'crisis'\], got \['bear'\]"),
    (lambda: Integrator(RiskBudgeting(20), regime_budgets={"low_vol": (0.5, 0.5), "crisis": (0.2, 0.3, 0.5)}),
     r"^regime_budgets\.crisis must be 2 entries long"),
    (lambda: Integrator(RiskBudgeting(20, budget=(0.5, 0.5)), regime_budgets={"crisis": (0.2, 0.3, 0.5)}),
     r"^regime_budgets\.crisis must be 2 entries long"),
    (lambda: Integrator(InverseVolatility(20), regime_budgets={"crisis": (0.5, 0.5)}),
     r"^regime_budgets must be None unless the allocator is RiskBudgeting \(it is InverseVolatility\)"),
    (lambda: Rebalance(calendar="yearly"), r"^calendar must be one of \['daily', 'weekly', 'monthly'\] or null"),
    (lambda: Rebalance(drift_band=0.0), r"^drift_band must be a number in \(0, 1\] or null, got 0.0"),
    (lambda: Rebalance(on_regime_change=1), r"^on_regime_change must be true or false"),
    (lambda: Integrator(InverseVolatility(20), cost_bps=-1.0), r"^cost_bps must be a non-negative number, got -1.0"),
    (lambda: Integrator(InverseVolatility(20), min_history=1), r"^min_history must be an integer >= 2, got 1"),
    (lambda: Integrator("erc"), r"^allocator must be an allocator with weights\(history, budget\)"),
    (lambda: Integrator(InverseVolatility(20), rebalance="monthly"), r"^rebalance must be a Rebalance"),
])
def test_bad_configuration_names_the_field(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_sizes_are_checked_against_the_books_before_any_work():
    books = _books(40)
    with pytest.raises(ConfigError, match=r"^regime_budgets\.low_vol must be 3 entries long"):
        Integrator(RiskBudgeting(20), regime_budgets={"low_vol": (0.5, 0.5)}).run(
            books, pl.DataFrame({"ts": books["ts"], "regime": "low_vol"}))
    with pytest.raises(ConfigError, match=r"^allocator\.weights must be 3 entries long"):
        Integrator(FixedWeights((0.5, 0.5))).run(books)
    with pytest.raises(ConfigError, match=r"^allocator\.budget must be 3 entries long"):
        Integrator(RiskBudgeting(20, budget=(0.5, 0.5))).run(books)


def test_bad_books_and_regimes():
    books = _books(40, k=2)
    integrator = Integrator(InverseVolatility(20), min_history=20)
    cases = [
        (books.drop("ts"), r"books lacks column ts"),
        (books.select("ts"), r"books has no book columns"),
        (books.reverse(), r"books\.ts must be non-empty, non-null and strictly increasing"),
        (pl.concat([books, books.tail(1)]), r"books\.ts must be non-empty, non-null and strictly increasing"),
        (books.with_columns(book_1=pl.lit(None, pl.Float64)), r"books\.book_1 is null on every day"),
        (books.with_columns(book_0=pl.lit("x")), r"books\.book_0 must hold numeric returns"),
        (books.with_columns(book_0=pl.when(pl.int_range(pl.len()) == 4).then(float("nan"))
                            .otherwise(pl.col("book_0"))), r"books\.book_0 on 2023-01-06 00:00:00 is nan"),
        (books.with_columns(book_1=pl.when(pl.int_range(pl.len()) == 4).then(-1.5)
                            .otherwise(pl.col("book_1"))), r"books\.book_1 on .* is -1\.5; .* >= -1"),
    ]
    for frame, message in cases:
        with pytest.raises(DataError, match=message):
            integrator.run(frame)
    flat = books.with_columns(book_1=pl.lit(0.0))
    with pytest.raises(DataError, match=r"at the close of .*columns \[1\] have zero variance"):
        integrator.run(flat)
    on_change = Integrator(InverseVolatility(20), Rebalance(on_regime_change=True), min_history=20)
    with pytest.raises(DataError, match="regime is None"):
        on_change.run(books)
    with pytest.raises(DataError, match=r"regime\.regime holds \['bear'\]"):
        on_change.run(books, pl.DataFrame({"ts": books["ts"], "regime": "bear"}))
