"""A fold's fitted inputs: each symbol's feature z-scores from its own training windows only, and feature
columns whose windows tell the symbols apart zeroed, measured by ``inputs/mi_symbol_bits``."""

import numpy as np
import pytest

from dualhrq.data.samples import SampleSet
from dualhrq.data.scaling import Standardizer
from dualhrq.errors import DataError
from dualhrq.training.conditioning import FoldConditioning
from dualhrq.training.fold import fit_inputs
from dualhrq.training.input_leakage import input_leakage
from dualhrq.validation.folds import FoldIndex

N = 1000  # bars per symbol


def two_symbols(seed=0):
    """Symbols A and B with 3 features: f0 the same law for both but B's at level 5 and scale 3 (a level that
    names the symbol), f1 the same law for both, f2 continuous for A and half exact zeros for B (a shape no
    z-score removes); one decision per bar from 40 on, time-major."""
    rng = np.random.default_rng(seed)
    f0 = np.concatenate([rng.normal(size=N), 5 + 3 * rng.normal(size=N)])
    f1 = rng.normal(size=2 * N)
    f2 = np.concatenate([rng.normal(size=N), np.where(rng.random(N) < 0.5, 0.0, rng.exponential(size=N))])
    ts = np.datetime64("2001-01-01", "us") + np.arange(N) * np.timedelta64(1, "D")
    ends = np.concatenate([np.arange(40, N - 1), N + np.arange(40, N - 1)])
    ends = ends[np.lexsort((ends >= N, np.tile(ts, 2)[ends]))]
    row_ts = np.tile(ts, 2)
    return SampleSet(features=np.column_stack([f0, f1, f2]).astype(np.float32),
                     regime=np.column_stack([f1]).astype(np.float32), end_row=ends,
                     symbol_id=(ends >= N).astype(np.int64), t=row_ts[ends], t1=row_ts[ends + 1],
                     t0=row_ts[ends - 31], target=rng.normal(size=len(ends)) * 0.01,
                     next_return=np.zeros(len(ends)), symbols=["A", "B"], row_symbol=np.repeat([0, 1], N),
                     row_ts=row_ts, feature_names=["f0", "f1", "f2"], regime_names=["f1"], seq_len=32, horizon=1)


def test_each_symbols_z_scores_come_from_its_own_training_window_rows():
    s = two_symbols()
    fold = FoldIndex(fold=0, train=np.arange(0, 1000), val=np.arange(0), test=np.arange(1060, len(s)))
    inputs = fit_inputs(s, fold, FoldConditioning(), max_mi_bits=None)
    for g in (0, 1):
        own = s.end_row[fold.train][s.symbol_id[fold.train] == g]
        rows = np.unique(np.concatenate([np.arange(e - 31, e + 1) for e in own]))  # the windows, by hand
        np.testing.assert_allclose(inputs.features.mean[g], s.features[rows].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(inputs.features.std[g], s.features[rows].std(axis=0), rtol=1e-5)
        z = inputs.arrays(s).features[rows]
        np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)  # standardised on exactly those rows
        np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-4)


def test_a_level_is_removed_by_the_z_scores_and_a_shape_by_the_screen():
    s = two_symbols()
    fold = FoldIndex(fold=0, train=np.arange(0, 1400), val=np.arange(0), test=np.arange(1460, len(s)))
    pooled = fit_inputs(s, fold, FoldConditioning(), max_mi_bits=None)
    pooled.features = Standardizer.fit(s.features, np.arange(2 * N))  # one pooled z-score: B's level stays
    assert input_leakage(pooled, s, fold)["inputs/mi_symbol_bits"] > 0.9  # of H(symbol) = 1 bit
    unscreened = fit_inputs(s, fold, FoldConditioning(), max_mi_bits=None)
    assert unscreened.feature_keep is None and input_leakage(unscreened, s, fold)["inputs/mi_symbol_bits"] > 0.3
    screened = fit_inputs(s, fold, FoldConditioning())
    assert list(screened.feature_keep) == [True, True, False]
    assert not screened.arrays(s).features[:, 2].any()
    metrics = input_leakage(screened, s, fold)
    assert metrics["inputs/mi_symbol_bits"] < 0.1 and metrics["inputs/features_dropped"] == 1


def test_inputs_that_all_name_the_symbol_are_refused_with_the_limit_named():
    s = two_symbols()
    s.features[:, :2] = s.features[:, [2, 2]]  # every feature is the telling shape
    fold = FoldIndex(fold=0, train=np.arange(0, 1400), val=np.arange(0), test=np.arange(1460, len(s)))
    with pytest.raises(DataError, match=r"model\.conditioning\.max_input_mi_bits"):
        fit_inputs(s, fold, FoldConditioning())
