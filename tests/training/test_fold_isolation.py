"""No test bar reaches a fold's fitted state or training inputs: perturb the test blocks, refit, compare.

Every fold-fitted object (feature, regime and query z-scores, the target scale, the regime inputs and
their symbol screen, regime labels, pattern encoder and library) and every training and validation
batch item must come out bit-identical when the test data change. Two perturbations: the feature rows
and targets dated inside a test block multiplied by -3 (the rows themselves), and the bars inside a test
block rescaled before the features are computed (what reaches later rows through the lookback).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import polars as pl
import pytest

from dualhrq.config import compose_train
from dualhrq.data.samples import SampleSet, build_samples
from dualhrq.data.sources import load_bundled, load_vix
from dualhrq.errors import DataError
from dualhrq.features.engine import FeatureSpec, compute_features, feature_names, input_lookback
from dualhrq.training.conditioning import ConditioningFit, fit_fold_conditioning
from dualhrq.training.fold import fit_inputs
from dualhrq.validation.cpcv import CombinatorialPurgedKFold, block_spans
from dualhrq.validation.folds import FoldIndex, make_folds

SPEC = FeatureSpec()
SPLITTER = CombinatorialPurgedKFold(n_groups=5, n_test_groups=1, purge_days=14, embargo_days=7)


@lru_cache
def _bars() -> pl.DataFrame:
    return load_bundled(start="2013-06-01", end="2018-12-31")


def _samples(bars: pl.DataFrame) -> SampleSet:
    cols, regime_cols = feature_names(SPEC)
    return build_samples(compute_features(bars, SPEC, load_vix()), cols, regime_cols, seq_len=32,
                         lookback=input_lookback(SPEC))


@lru_cache
def _cfg() -> ConditioningFit:
    group = compose_train(["model/conditioning=regime_rag", "seed=0"]).model.conditioning
    return ConditioningFit.from_config(group)


def _state(samples: SampleSet, fold: FoldIndex) -> dict[str, np.ndarray]:
    """Everything the fold fits and every training/validation batch item, as named arrays."""
    cond = fit_fold_conditioning(_cfg(), samples, fold)
    inputs = fit_inputs(samples, fold, cond)
    data = inputs.arrays(samples)
    fit_side = np.concatenate([fold.train, fold.val])
    window_rows = (samples.end_row[fit_side, None] - np.arange(samples.seq_len)[None, :]).ravel()
    state = {f"inputs.{k}": np.asarray(v) for k, v in inputs.save_arrays().items()}
    state |= {f"library.{k}": getattr(cond.library, k) for k in ("embedding", "time", "outcome", "quality", "uses")}
    state |= {f"label.{k}": v[fit_side] for k, v in cond.labels.items()}
    state |= {"x": data.features[window_rows], "regime": data.regime[samples.end_row[fit_side]],
              "target": samples.target[fit_side]}
    state |= {f"extra.{k}": v[fit_side] for k, v in data.extras.items()}
    return state


def _test_rows(samples: SampleSet, fold: FoldIndex) -> np.ndarray:
    rows = np.zeros(len(samples.row_ts), dtype=bool)
    for a, b in block_spans(samples.t, samples.t1, fold.test):
        rows |= (samples.row_ts >= a) & (samples.row_ts <= b)
    return rows


@lru_cache
def _folds() -> list[FoldIndex]:
    samples = _samples(_bars())
    return make_folds(SPLITTER, samples.t, samples.t1, 0.1, samples.t0)


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


@pytest.mark.parametrize("fold", [0, 2, 4])
def test_test_block_rows_times_minus_three_change_nothing_fitted(fold: int) -> None:
    samples, f = _samples(_bars()), _folds()[fold]
    rows = _test_rows(samples, f)
    in_test = np.isin(np.arange(len(samples)), f.test)
    flipped = dataclasses.replace(
        samples, features=np.where(rows[:, None], -3 * samples.features, samples.features),
        regime=np.where(rows[:, None], -3 * samples.regime, samples.regime),
        target=np.where(in_test, -3 * samples.target, samples.target),
        next_return=np.where(in_test, -3 * samples.next_return, samples.next_return))
    assert rows.sum() > 100 and not np.array_equal(flipped.features, samples.features)
    _assert_same(_state(flipped, f), _state(samples, f))


@pytest.mark.parametrize("fold", [1, 3])
def test_test_block_bars_reach_no_training_input_through_the_lookback(fold: int) -> None:
    bars, f = _bars(), _folds()[fold]
    samples = _samples(bars)
    (a, b), = block_spans(samples.t, samples.t1, f.test)
    inside = pl.col("ts").is_between(pl.lit(a), pl.lit(b))
    shocked = bars.with_columns(*(pl.when(inside).then(pl.col(c) * 1.5).otherwise(pl.col(c)).alias(c)
                                  for c in ("open", "high", "low", "close")))
    moved = _samples(shocked)
    np.testing.assert_array_equal(moved.t, samples.t)
    assert not np.array_equal(moved.features, samples.features)
    _assert_same(_state(moved, f), _state(samples, f))


def test_the_embargo_covers_the_input_window_and_lookback() -> None:
    samples = _samples(_bars())
    # 31 earlier window bars + the lookback bars must clear the block: that many trading days after it at least
    after = [f for f in _folds() if (samples.t[f.train] > samples.t[f.test].max()).any()]
    assert len(after) >= 2 and all(f.embargo_days >= 31 + input_lookback(SPEC) for f in after)
    for f in _folds():
        for a, b in block_spans(samples.t, samples.t1, f.test):
            knows = (samples.t0[f.train] <= b) & (samples.t1[f.train] >= a)
            assert not knows.any()


def test_folds_that_ignore_the_input_windows_are_refused_by_the_regime_labels() -> None:
    samples = _samples(_bars())
    blind = make_folds(SPLITTER, samples.t, samples.t1, 0.1)[1]  # no t0: training windows read the test block
    with pytest.raises(DataError, match=r"training or validation samples have no label.*t0=samples\.t0"):
        fit_fold_conditioning(_cfg(), samples, blind)
