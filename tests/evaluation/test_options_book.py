"""Book A in the replay: its desk Greek limits from ``options.book.greek_limits`` and their refusals in its
metrics, on the default SYNTHETIC market."""

from __future__ import annotations

import polars as pl
import pytest
from hydra import compose, initialize_config_dir

from dualhrq.config import CONF_DIR
from dualhrq.data.synthetic import generate_bars
from dualhrq.evaluation.books import options_book

MARKET = {"n_symbols": 6, "start": "2024-01-02", "n_days": 30, "seed": 0}  # conf/data/synthetic_intraday.yaml's


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, pl.DataFrame]:
    bars = generate_bars(**MARKET).collect()
    predictions = bars.group_by("symbol", pl.col("ts").dt.date().alias("day")).agg(pl.col("ts").last()).select(
        "ts", "symbol")
    return bars, predictions


def _run(market, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="replay", overrides=["data=synthetic_intraday", *overrides])
    return options_book(cfg, *market, periods_per_year=252)


def test_the_default_desk_limits_do_not_bind_on_the_default_synthetic_market(market):
    run = _run(market, [])
    assert run.book.greek_limits is not None
    assert {k: v for k, v in run.metrics.items() if k.startswith("book_a/pretrade_")} == {
        "book_a/pretrade_rejections": 0, "book_a/pretrade_max_delta": 0, "book_a/pretrade_max_vega": 0,
        "book_a/pretrade_max_gamma": 0}
    # the net vega of every book held ($ per vol point) leaves room under the default bound
    held = run.attribution.group_by("date").agg((pl.col("vega") * 0.01).sum())
    assert held["vega"].abs().max() < 0.5 * run.book.greek_limits.max_vega


def test_a_binding_vega_limit_is_counted_in_book_a_metrics(market):
    # room for one symbol's straddle (each at most vega_limit, 500 $ per vol point) but not two
    run = _run(market, ["options.book.greek_limits.max_vega=700"])
    counts = {k.removeprefix("book_a/pretrade_"): v for k, v in run.metrics.items() if k.startswith("book_a/pretrade_")}
    rejections = run.book.run_checked(run.chain, run.surface).rejections
    assert counts == {"rejections": rejections.height, "max_delta": 0, "max_gamma": 0, "max_vega": rejections.height}
    assert rejections.height > 0 and (rejections["value"] > 700.0).all() and (rejections["bound"] == 700.0).all()
    assert f"refused {rejections.height} rebalances" in run.lines[-1]
    # the book held on a day the limit refused a rebalance is within it, by its legs' Greeks
    legs, _ = run.book.holdings(run.chain, run.surface, day=rejections["date"].max())
    vega = (legs["contracts"] * legs["vega"]).sum() * 100 * 0.01
    assert 0 < abs(vega) <= 700.0


def test_without_desk_limits_book_a_reports_no_pretrade_counts(market):
    run = _run(market, ["options.book.greek_limits=null"])
    assert not any(k.startswith("book_a/pretrade_") for k in run.metrics)
