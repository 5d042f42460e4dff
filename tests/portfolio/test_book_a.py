"""Book A on hand-built chains priced by Black-Scholes from a known volatility surface."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from hydra import compose, initialize_config_dir
from scipy.stats import norm

from dualhrq.config import CONF_DIR, build
from dualhrq.data.synthetic import generate_bars, generate_option_chain, svi_surface
from dualhrq.errors import ConfigError, DataError
from dualhrq.portfolio.book_a import OptionsBook
from dualhrq.primitives.bsm import bsm_greeks, bsm_price
from dualhrq.risk.limits import GreekLimits


def chain(spots: dict[str, list[float]], vol=lambda k, s, tau, d: 0.25 + 0.1 * (np.log(k / s)) ** 2 + 0.002 * d,
          start=date(2024, 1, 2), rate=0.03, expiries=None) -> pl.DataFrame:
    """Daily chains: expiries on fixed dates, strikes every 1% of the first spot, BSM prices at ``vol``."""
    rows = []
    expiries = expiries or [start + timedelta(days=n) for n in (24, 52, 80)]
    for sym, path in spots.items():
        strikes = path[0] * np.arange(0.80, 1.2001, 0.01)
        for d, s in enumerate(path):
            today = start + timedelta(days=d)
            for ex in expiries:
                tau = (ex - today).days / 365.0
                if tau <= 0:
                    continue
                for right in ("C", "P"):
                    iv = vol(strikes, s, tau, d)
                    price = bsm_price(s, strikes, tau, rate, iv, right == "C")
                    rows.append(pl.DataFrame({"date": today, "symbol": sym, "expiry": ex, "tau": tau,
                                              "strike": strikes, "right": right, "underlying": s, "rate": rate,
                                              "iv": iv, "price": price}))
    return pl.concat(rows)


def _path(n=30, seed=0, s0=100.0, vol=0.25):
    rng = np.random.default_rng(seed)
    return list(s0 * np.exp(np.cumsum(np.r_[0.0, rng.normal(0, vol / np.sqrt(365), n - 1)])))


def test_straddle_is_delta_hedged_within_limits_and_attribution_leaves_a_small_residual():
    book = OptionsBook(structure="straddle", vega_limit=2_000.0, gamma_limit=5_000.0, min_tau_days=20,
                       roll_tau_days=5)  # the hand-built chain lists every expiry until it expires
    out = book.run(chain({"AAA": _path(), "BBB": _path(seed=1, s0=40.0)}))
    assert out.height == 2 * 30  # the opening day's row holds the opening costs
    assert (out["net_delta"].abs() <= 0.5).all()  # hedged to the nearest share
    assert (out["vega"].abs() * 0.01 <= 2_000.0 + 1e-6).all() and (out["contracts"] > 0).all()
    terms = out.select(pl.sum_horizontal("delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl") + pl.col("residual"))
    assert np.allclose(terms.to_series().to_numpy(), out["total"].to_numpy())
    # the residual holds the third- and cross-order terms of a one-day step: a few % of the attributed P&L
    attributed = out.select(pl.col("delta_pnl", "gamma_pnl", "vega_pnl", "theta_pnl").abs().sum()).sum_horizontal()
    assert out["residual"].abs().sum() < 0.05 * attributed.item()
    assert (out["vega_pnl"] > 0).mean() > 0.9  # the surface rises 0.2 vol points a day: long vega gains


def test_rolls_before_expiry_and_short_strangles_sell_the_wings():
    spots = _path(n=40)
    out = OptionsBook(structure="strangle", side="short", width=0.05, min_tau_days=20, roll_tau_days=5).run(
        chain({"AAA": spots}))
    assert (out["vega"] < 0).all() and (out["theta"] > 0).all()  # short options: short vega, collects theta
    book = OptionsBook(structure="strangle", width=0.05, min_tau_days=20, roll_tau_days=5)
    quotes = chain({"AAA": spots}).filter(pl.col("date") == date(2024, 1, 2))
    legs = book._legs(quotes).sort("right")
    assert legs["expiry"].to_list() == [date(2024, 1, 26)] * 2  # first expiry with >= 20 days
    assert legs["strike"].to_list() == pytest.approx([105.0, 95.0])


def test_gamma_pnl_by_hand_for_one_day():
    spots = [100.0, 102.0, 102.0]
    out = OptionsBook(vega_limit=1e9, gamma_limit=1e9, commission_per_contract=0.0).run(
        chain({"AAA": spots}, vol=lambda k, s, tau, d: np.full_like(k, 0.2)))
    first = out.filter(pl.col("date") == date(2024, 1, 3)).row(0, named=True)
    g = bsm_greeks(100.0, 100.0, 24 / 365, 0.03, 0.2, True)["gamma"] * 2  # straddle: call and put gamma are equal
    assert first["gamma_pnl"] == pytest.approx(0.5 * first["contracts"] * 100 * g * 4.0, rel=1e-9)
    assert first["vega_pnl"] == 0.0


def test_a_rebalance_is_charged_on_the_day_it_trades():
    spots = [100.0, 101.0, 99.0, 100.0]
    out = OptionsBook(commission_per_contract=1.0, hedge_cost_bps=0.0, min_tau_days=20, roll_tau_days=5).run(
        chain({"AAA": spots}))
    opening = out.row(0, named=True)
    # day 1: the straddle is opened (two legs of the same size) and nothing else is earned yet
    assert opening["date"] == date(2024, 1, 2) and opening["total"] == 0.0
    assert opening["costs"] == pytest.approx(2 * opening["contracts"]) and opening["net"] == -opening["costs"]
    assert out["costs"][-1] == 0.0  # no trade at the last close


def test_bad_book_a_settings_and_chains_are_refused():
    with pytest.raises(ConfigError, match="structure"):
        OptionsBook(structure="butterfly")
    with pytest.raises(ConfigError, match="roll_tau_days"):
        OptionsBook(min_tau_days=5, roll_tau_days=10)
    with pytest.raises(DataError, match="iv"):
        OptionsBook().run(chain({"AAA": _path(5)}).drop("iv"))


def test_contracts_missing_from_a_days_chain_are_marked_along_its_smile():
    spots = _path(n=12)
    flat = lambda k, s, tau, d: np.full_like(k, 0.3)  # noqa: E731
    fixed = chain({"AAA": spots}, vol=flat)
    # the same market listing strikes around each day's spot (as the synthetic chain does): held strikes vanish
    expiries = sorted(fixed["expiry"].unique().to_list())
    moving = pl.concat([chain({"AAA": [s]}, vol=flat, start=date(2024, 1, 2) + timedelta(days=d), expiries=expiries)
                        for d, s in enumerate(spots)])
    book = OptionsBook(min_tau_days=20, roll_tau_days=5)
    a, b = book.run(fixed), book.run(moving)
    first_strike = book._legs(moving.filter(pl.col("date") == date(2024, 1, 2)))["strike"][0]
    assert first_strike not in moving.filter(pl.col("date") == date(2024, 1, 3))["strike"].to_list()
    assert a["total"].to_numpy() == pytest.approx(b["total"].to_numpy(), rel=1e-6, abs=1e-6)


def test_on_the_synthetic_chain_the_book_stays_hedged_and_the_residual_small():
    bars = generate_bars(n_symbols=4, start="2024-01-02", n_days=15, seed=0)
    out = OptionsBook().run(generate_option_chain(bars, seed=0), svi_surface(bars, seed=0))
    assert out["symbol"].n_unique() == 4 and (out["net_delta"].abs() <= 0.5).all()
    assert (out["vega"].abs() * 0.01 <= OptionsBook().vega_limit + 1e-6).all()
    share = out["residual"].abs() / out.select(pl.col("^(delta|gamma|vega|theta)_pnl$").abs()).sum_horizontal()
    assert share.median() < 0.10  # jump days (the market's crashes) carry the rest


def test_holdings_are_the_legs_and_hedge_run_carries_into_the_next_day():
    quotes = chain({"AAA": _path(n=8), "BBB": _path(n=8, seed=1, s0=40.0)})
    book = OptionsBook(side="short", min_tau_days=20, roll_tau_days=5)
    out = book.run(quotes)
    days = sorted(quotes["date"].unique().to_list())
    for today, tomorrow in zip(days[:-1], days[1:], strict=True):
        legs, hedge = book.holdings(quotes, day=today)
        row = out.filter(pl.col("date") == tomorrow).sort("symbol")  # the P&L row of the book held overnight
        assert [hedge[s] for s in row["symbol"]] == row["hedge"].to_list()
        per_symbol = legs.group_by("symbol").agg(pl.col("contracts").abs().max()).sort("symbol")
        assert per_symbol["contracts"].to_list() == row["contracts"].to_list() and (legs["contracts"] < 0).all()
        marks = legs.join(quotes.filter(pl.col("date") == today), on=["symbol", "expiry", "strike", "right"])
        assert marks.height == legs.height and marks["price"].to_list() == marks["price_right"].to_list()
    last, hedge = book.holdings(quotes)  # the last day trades nothing: last night's book at the day's marks
    assert last.select("symbol", "strike", "contracts").equals(
        book.holdings(quotes, day=days[-2])[0].select("symbol", "strike", "contracts"))
    marks = last.join(quotes.filter(pl.col("date") == days[-1]), on=["symbol", "expiry", "strike", "right"])
    assert marks.height == 4 and marks["price"].to_list() == marks["price_right"].to_list()
    assert hedge == book.holdings(quotes, day=days[-2])[1]
    with pytest.raises(DataError, match=r"day=2023-01-02 is not a date of the option chain, which covers 2024-01-02"):
        book.holdings(quotes, day=date(2023, 1, 2))


def test_holdings_carry_the_svi_slice_and_revalue_as_a_delta_neutral_book():
    from dualhrq.risk.stress import option_stress

    quotes = chain({"AAA": _path(n=4)})
    svi = (quotes.select("date", "symbol", "expiry").unique()
           .with_columns(a=pl.lit(0.004), b=pl.lit(0.02), rho=pl.lit(-0.5), m=pl.lit(0.0), sigma=pl.lit(0.1)))
    book = OptionsBook(min_tau_days=20, roll_tau_days=5)
    legs, hedge = book.holdings(quotes, svi, day=date(2024, 1, 3))
    assert legs.select("a", "rho").unique().rows() == [(0.004, -0.5)]
    still = option_stress(legs.drop("a", "b", "rho", "m", "sigma"), 0.0, 1.0, hedge=hedge).row(0, named=True)
    assert still["full_pnl"] == 0.0
    assert still["value"] == pytest.approx((legs["contracts"] * legs["price"]).sum() * 100, rel=1e-12)
    # hedged to the nearest share: a 0.1% move earns the net delta's P&L, at most half a share's, plus gamma's
    nudge = option_stress(legs, 0.001, 1.0, hedge=hedge).row(0, named=True)
    assert abs(nudge["delta_pnl"]) <= 0.5 * 0.001 * nudge["spot"] + 1e-9


# Desk limits. On a constant spot and a flat 20% surface, with the per-symbol dollar-gamma limit binding, a new
# ATM straddle of tau days holds floor(2000 / gamma per contract) contracts: its vega grows about like tau.
FLAT = lambda k, s, tau, d: np.full_like(k, 0.2)  # noqa: E731
GAMMA_BOUND = dict(vega_limit=1e9, gamma_limit=2_000.0, min_tau_days=20, roll_tau_days=5)


def _new_straddle_vega(days: float, strike: float, spot=100.0, rate=0.03, vol=0.2) -> float:
    """Net vega ($ per vol point) of the straddle Book A opens ``days`` from expiry, by hand from N'(d1)."""
    tau = days / 365
    d1 = (np.log(spot / strike) + (rate + vol**2 / 2) * tau) / (vol * np.sqrt(tau))
    gamma_1pct = 100 * 0.5 * 2 * norm.pdf(d1) / (spot * vol * np.sqrt(tau)) * (0.01 * spot) ** 2
    return np.floor(2_000.0 / gamma_1pct) * 100 * 2 * spot * norm.pdf(d1) * np.sqrt(tau) * 0.01


def _atm(quotes: pl.DataFrame) -> float:
    return min(quotes["strike"].unique().to_list(), key=lambda k: abs(k - 100.0))


def test_a_desk_vega_limit_refuses_exactly_the_rolls_that_breach_it_and_passes_one_at_the_bound():
    quotes = chain({"AAA": [100.0] * 30}, vol=FLAT)  # expiries 24, 52 and 80 days after the first day
    k, days = _atm(quotes), sorted(quotes["date"].unique().to_list())
    bound = _new_straddle_vega(26, k)  # the straddle opened 26 days before the second expiry
    plain = OptionsBook(**GAMMA_BOUND).run(quotes)
    result = OptionsBook(**GAMMA_BOUND, greek_limits=GreekLimits(max_vega=bound)).run_checked(quotes)
    # the opening (24 days out) and the held legs (their vega decays) pass; on day 20 the first expiry is 4 days
    # out and rolls into the second, 32 days out: that roll, and the new straddles of days 21..25 (31..27 days
    # out), carry more vega than the bound; day 26's has exactly the bound's and trades
    assert result.rejections["date"].to_list() == days[20:26]
    assert set(result.rejections["limit"]) == {"max_vega"} and result.rejections["bound"].to_list() == [bound] * 6
    by_hand = [_new_straddle_vega(52 - d, k) for d in range(20, 26)]
    assert result.rejections["value"].to_numpy() == pytest.approx(by_hand, rel=1e-12)
    assert result.counts == {"max_delta": 0, "max_vega": 6, "max_gamma": 0}
    out = result.attribution
    assert out.filter(pl.col("date") < days[20]).equals(plain.filter(pl.col("date") < days[20]))
    # the refused roll closes the expiring straddle and its hedge: commissions and the hedge's unwinding
    closing = out.filter(pl.col("date") == days[20]).row(0, named=True)
    assert closing["costs"] == pytest.approx(2 * closing["contracts"] * 0.65 + abs(closing["hedge"]) * 100 * 1e-4)
    assert out["date"].to_list() == [*days[:21], *days[26:]]  # flat while refused, opened on day 26
    assert out.filter(pl.col("date") == days[26])["vega"].item() * 0.01 == pytest.approx(bound, rel=1e-12)
    # a bound a hair below day 26's vega refuses that day too; day 27's straddle (25 days out) trades
    below = OptionsBook(**GAMMA_BOUND, greek_limits=GreekLimits(max_vega=bound * (1 - 1e-9))).run_checked(quotes)
    assert below.rejections["date"].to_list() == days[20:27]


def test_desk_limits_take_back_the_symbol_whose_new_legs_push_the_book_over():
    quotes = chain({"AAA": [100.0] * 12, "BBB": [100.0] * 12}, vol=FLAT)
    k, days = _atm(quotes), sorted(quotes["date"].unique().to_list())
    bound = 2 * _new_straddle_vega(21, k)  # two straddles 21 days out
    result = OptionsBook(**GAMMA_BOUND, greek_limits=GreekLimits(max_vega=bound, max_gamma=1e9)).run_checked(quotes)
    # day 0 opens both, over the bound: taken back in symbol order, AAA's goes and BBB's trades. On days 1..3
    # BBB's held straddle (shrunk to the gamma limit, so a new one's vega) and AAA's new one are 24 - d days
    # out: over the bound on days 1 and 2, at it on day 3, when AAA opens
    assert result.rejections["symbol"].to_list() == ["AAA"] * 3 and result.rejections["date"].to_list() == days[:3]
    by_hand = [2 * _new_straddle_vega(24 - d, k) for d in range(3)]
    assert result.rejections["value"].to_numpy() == pytest.approx(by_hand, rel=1e-12)
    # each symbol's rows are those of a book of it alone, from the day it opened (its opening costs booked there)
    alone = OptionsBook(**GAMMA_BOUND)
    bbb = alone.run(quotes.filter(pl.col("symbol") == "BBB"))
    aaa = alone.run(quotes.filter((pl.col("symbol") == "AAA") & (pl.col("date") >= days[3])))
    assert result.attribution.equals(pl.concat([aaa, bbb]).sort("date", "symbol"))
    opening = aaa.row(0, named=True)
    assert opening["total"] == 0.0 and opening["costs"] > 2 * 0.65 * opening["contracts"] > 0


def test_without_desk_limits_or_with_loose_ones_the_book_is_unchanged():
    quotes = chain({"AAA": _path(n=22), "BBB": _path(n=22, seed=1, s0=40.0)})  # rolls on day 20
    plain = OptionsBook(side="short", min_tau_days=20, roll_tau_days=5).run_checked(quotes)
    assert plain.rejections.is_empty()
    for limits in (GreekLimits(), GreekLimits(max_delta=1e7, max_vega=1e7, max_gamma=1e7)):
        checked = OptionsBook(side="short", min_tau_days=20, roll_tau_days=5, greek_limits=limits).run_checked(quotes)
        assert checked.attribution.equals(plain.attribution) and checked.rejections.is_empty()


def test_bad_desk_limits_are_refused_naming_the_field():
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="replay", overrides=["options.book.greek_limits.max_vega=-1"])
    with pytest.raises(ConfigError, match=r"^options\.book\.greek_limits\.max_vega must be a finite positive number"):
        build(cfg.options.book)
    with pytest.raises(ConfigError, match=r"^greek_limits\.multiplier must be the book's multiplier \(10\), got 100"):
        OptionsBook(multiplier=10, greek_limits=GreekLimits(max_vega=1.0))
    with pytest.raises(ConfigError, match=r"^greek_limits must be GreekLimits settings or null.*_target_"):
        OptionsBook(greek_limits={"max_vega": 1.0})
