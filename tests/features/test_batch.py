"""Chunked feature computation equals the in-memory one."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from dualhrq.data.synthetic import write_bars
from dualhrq.errors import ConfigError
from dualhrq.features.batch import write_intraday_features
from dualhrq.features.engine import IntradayFeatureSpec, compute_features

SPEC = IntradayFeatureSpec(short=3, medium=10, long=60, tsrv_k=3, vol_regime=False, rule_state=False)


def test_chunks_with_a_warm_up_day_reproduce_the_whole_history(tmp_path) -> None:
    scan = write_bars(tmp_path / "bars", n_symbols=3, n_days=7, seed=4)
    chunked = write_intraday_features(scan, SPEC, tmp_path / "features", chunk_days=2)
    assert len(list((tmp_path / "features").glob("part-*.parquet"))) == 4
    expected = compute_features(scan.collect(), SPEC)
    # equal up to the rounding residue of rolling sums over runs of unchanged prices (~1e-20 variances)
    assert_frame_equal(chunked.collect().sort("symbol", "ts"), expected, rel_tol=1e-9, abs_tol=1e-9)


def test_the_model_fitted_regime_and_too_short_warm_ups_are_refused(tmp_path) -> None:
    scan = pl.LazyFrame()
    with pytest.raises(ConfigError, match="vol_regime, options and rule_state"):
        write_intraday_features(scan, IntradayFeatureSpec(vol_regime=True), tmp_path)
    with pytest.raises(ConfigError, match="warmup_days"):
        write_intraday_features(scan, IntradayFeatureSpec(long=300, vol_regime=False, rule_state=False), tmp_path,
                                warmup_days=1)
