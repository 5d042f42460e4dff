"""Unsupervised regime labels: hysteresis by hand, recovery of planted regimes, stability, fold-only fitting."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from dualhrq.data.samples import SampleSet
from dualhrq.errors import ConfigError
from dualhrq.models.conditioning.config import CondConfig
from dualhrq.models.conditioning.fold_fit import fit_fold_conditioning
from dualhrq.models.conditioning.regime_labels import RegimeLabelConfig, RegimeLabeler, hysteresis, switches_per_day
from dualhrq.validation.folds import FoldIndex


def test_hysteresis_worked_by_hand():
    p = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.9, 0.1]])
    # margin 0.3, min_dwell 2: bar 1 (lead 0.2) is not enough; bar 2 (lead 0.4, dwell 2) switches to 1;
    # bar 4 favours 0 by 0.2 only; bar 6 favours 0 by 0.8 with dwell 4: back to 0
    assert hysteresis(p, np.zeros(7, int), margin=0.3, min_dwell=2).tolist() == [0, 0, 1, 1, 1, 1, 0]
    # min_dwell 5: regime 0 must hold 5 bars before any switch (bar 5, lead 0.8); then bar 6 is too soon
    assert hysteresis(p, np.zeros(7, int), margin=0.3, min_dwell=5).tolist() == [0, 0, 0, 0, 0, 1, 1]
    # a new symbol starts afresh at its own first bar's best regime
    assert hysteresis(p, np.array([0, 0, 0, 1, 1, 1, 1]), 0.3, 2).tolist() == [0, 0, 1, 1, 1, 1, 0]


def test_switches_per_day_worked_by_hand():
    ts = np.array(["2024-01-02T10:00", "2024-01-02T11:00", "2024-01-03T10:00", "2024-01-03T11:00",
                   "2024-01-02T10:00", "2024-01-03T10:00"], dtype="datetime64[us]")
    labels = np.array([0, 1, 1, 1, 2, 2])
    symbol = np.array([0, 0, 0, 0, 1, 1])
    # symbol 0: switch on day 1, none on day 2; symbol 1: none (its first bar is no switch): 1 of 4 symbol-days
    assert switches_per_day(labels, symbol, ts) == pytest.approx(0.25)
    # a switch at the first bar of a day counts for that day
    assert switches_per_day(np.array([0, 0, 1, 1]), np.zeros(4, int), ts[:4]) == pytest.approx(0.5)


def planted(n=1200, seed=0):
    """Two symbols; a 3-regime path in blocks of 100 bars, features = regime mean + noise."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(rng.permutation(np.tile([0, 1, 2], 4)), 100)[:n]
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    return means[truth] + 0.5 * rng.normal(size=(n, 2)), truth


def test_mixture_with_hysteresis_recovers_planted_regimes():
    x, truth = planted()
    symbol = np.zeros(len(x), int)
    labeler = RegimeLabeler(3, RegimeLabelConfig(covariance="full", halflife=2.0, margin=0.3, min_dwell=10))
    labels = labeler.fit(x, np.arange(len(x))).label(x, symbol)
    # up to relabelling and a few bars of lag per switch
    assert adjusted_rand_score(truth, labels) > 0.9
    assert np.count_nonzero(np.diff(labels)) == np.count_nonzero(np.diff(truth))


def test_labeler_refuses_bad_settings():
    with pytest.raises(ConfigError, match=r"model\.cond\.regimes"):
        RegimeLabeler(1, RegimeLabelConfig())
    with pytest.raises(ConfigError, match=r"model\.cond\.labels\.margin"):
        RegimeLabelConfig(margin=1.5)


def sample_set(n_rows=600, seed=0):
    """A SampleSet of one symbol with 2 features and 2 regime features, decisions every bar from 40 on."""
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2020-01-01", "us") + np.arange(n_rows) * np.timedelta64(1, "D")
    regime, _ = planted(n_rows, seed)
    ends = np.arange(40, n_rows - 1)
    return SampleSet(features=rng.normal(size=(n_rows, 2)).astype(np.float32),
                     regime=regime.astype(np.float32), end_row=ends, symbol_id=np.zeros(len(ends), np.int64),
                     t=ts[ends], t1=ts[ends + 1], target=rng.normal(size=len(ends)) * 0.01,
                     next_return=np.zeros(len(ends)), symbols=["A"], feature_names=["f0", "f1"],
                     regime_names=["r0", "r1"], seq_len=32, horizon=1), ts


def test_labels_and_library_are_fitted_on_the_training_fold_only():
    s, ts = sample_set()
    fold = FoldIndex(fold=0, train=np.arange(0, 300), val=np.arange(0), test=np.arange(350, len(s)))
    cfg = CondConfig.from_config({"regimes": 3, "patterns": {"scales": [8, 16], "dim": 4,
                                                             "library": {"codebook": 8}}})
    rows = (np.zeros(len(s.features), np.int64), ts)
    a = fit_fold_conditioning("regime_rag", cfg, s, fold, *rows)
    # wreck everything outside the training windows: nothing fitted may change
    wrecked = s.end_row[fold.test].min() - s.seq_len
    s.regime[wrecked:] = 100.0 * np.random.default_rng(9).normal(size=s.regime[wrecked:].shape)
    s.features[wrecked:] = 50.0
    s.target[fold.test] = 1.0
    b = fit_fold_conditioning("regime_rag", cfg, s, fold, *rows)
    np.testing.assert_array_equal(a.extras["regime_label"][fold.train], b.extras["regime_label"][fold.train])
    np.testing.assert_array_equal(a.extras["query"][fold.train], b.extras["query"][fold.train])
    np.testing.assert_array_equal(a.library.embedding, b.library.embedding)
    # the library holds the training decisions' patterns only (2 scales each)
    t_us = s.t.astype(np.int64)
    assert set(a.library.time.tolist()) == set(t_us[fold.train].tolist())
    assert len(a.library) == 2 * len(fold.train)
    assert 0.0 <= a.metrics["regime/switches_per_day"] <= 0.05


@pytest.mark.parametrize("kind", ["none", "puzzle_id"])
def test_variants_without_regime_fit_nothing(kind):
    s, ts = sample_set()
    fold = FoldIndex(fold=0, train=np.arange(300), val=np.arange(0), test=np.arange(350, len(s)))
    out = fit_fold_conditioning(kind, CondConfig(), s, fold, np.zeros(len(s.features), np.int64), ts)
    assert out.extras == {} and out.library is None and out.metrics == {}


def test_a_regime_feature_that_identifies_the_symbol_is_left_out():
    # two symbols, 400 bars each; feature 0 has the same law for both, feature 1 is continuous for symbol A
    # but half exact zeros for symbol B (a jump share, say): standardising per symbol cannot hide that
    rng = np.random.default_rng(3)
    n = 400
    shared = rng.normal(size=2 * n)
    shape = np.concatenate([rng.normal(size=n), np.where(rng.random(n) < 0.5, 0.0, rng.exponential(size=n))])
    ts_one = np.datetime64("2020-01-01", "us") + np.arange(n) * np.timedelta64(1, "D")
    ends = np.concatenate([np.arange(40, n - 1), n + np.arange(40, n - 1)])
    order = np.lexsort((ends >= n, np.tile(ts_one[40 : n - 1], 2)))
    ends = ends[order]
    s = SampleSet(features=rng.normal(size=(2 * n, 2)).astype(np.float32),
                  regime=np.stack([shared, shape], axis=1).astype(np.float32), end_row=ends,
                  symbol_id=(ends >= n).astype(np.int64), t=np.tile(ts_one, 2)[ends], t1=np.tile(ts_one, 2)[ends + 1],
                  target=rng.normal(size=len(ends)) * 0.01, next_return=np.zeros(len(ends)), symbols=["A", "B"],
                  feature_names=["f0", "f1"], regime_names=["shared", "shape"], seq_len=32, horizon=1)
    fold = FoldIndex(fold=0, train=np.arange(0, 400), val=np.arange(0), test=np.arange(450, len(ends)))
    rows = (np.repeat([0, 1], n).astype(np.int64), np.tile(ts_one, 2))
    out = fit_fold_conditioning("regime", CondConfig.from_config({"regimes": 2}), s, fold, *rows)
    assert out.metrics["conditioning/inputs_dropped"] == 1
    assert not out.extras["regime"][:, 1].any() and out.extras["regime"][:, 0].std() > 0.5
    kept = fit_fold_conditioning("regime", CondConfig.from_config({"regimes": 2, "max_input_mi_bits": None}), s,
                                 fold, *rows)
    assert kept.metrics["conditioning/inputs_dropped"] == 0 and kept.extras["regime"][:, 1].std() > 0.5
