"""Conditioning fitted on a CV fold: the settings each ``model/conditioning`` group asks for, regime labels and
the pattern library from the training part only, and regime inputs that identify the symbol left out."""

from functools import lru_cache

import numpy as np
import pytest
from omegaconf import DictConfig

from dualhrq.config import compose_train
from dualhrq.data.samples import SampleSet
from dualhrq.errors import ConfigError
from dualhrq.training.conditioning import ConditioningFit, fit_fold_conditioning
from dualhrq.validation.folds import FoldIndex


@lru_cache
def group(kind: str) -> DictConfig:
    """``model.conditioning`` as the job composes it with ``model/conditioning=<kind>``."""
    return compose_train([f"model/conditioning={kind}"]).model.conditioning


def planted(n=1200, seed=0):
    """A 3-regime path in blocks of 100 bars, features = regime mean + noise."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(rng.permutation(np.tile([0, 1, 2], 4)), 100)[:n]
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    return means[truth] + 0.5 * rng.normal(size=(n, 2)), truth


def sample_set(n_rows=600, seed=0):
    """A SampleSet of one symbol with 2 features and 2 regime features, decisions every bar from 40 on."""
    rng = np.random.default_rng(seed)
    ts = np.datetime64("2020-01-01", "us") + np.arange(n_rows) * np.timedelta64(1, "D")
    regime, _ = planted(n_rows, seed)
    ends = np.arange(40, n_rows - 1)
    return SampleSet(features=rng.normal(size=(n_rows, 2)).astype(np.float32),
                     regime=regime.astype(np.float32), end_row=ends, symbol_id=np.zeros(len(ends), np.int64),
                     t=ts[ends], t1=ts[ends + 1], t0=ts[ends - 31], target=rng.normal(size=len(ends)) * 0.01,
                     next_return=np.zeros(len(ends)), symbols=["A"], row_symbol=np.zeros(n_rows, np.int64),
                     row_ts=ts, feature_names=["f0", "f1"], regime_names=["r0", "r1"], seq_len=32, horizon=1)


def test_each_group_asks_for_what_its_conditioner_needs():
    assert ConditioningFit.from_config(group("none")) == ConditioningFit()
    assert ConditioningFit.from_config(group("puzzle_id")) == ConditioningFit()
    regime = ConditioningFit.from_config(group("regime"))
    assert regime.labels is not None and regime.patterns is None and regime.retrieval is None
    assert (regime.regimes, regime.max_input_mi_bits, regime.labels.covariance) == (4, 0.1, "diag")
    rag = ConditioningFit.from_config(group("regime_rag"))
    assert rag.labels is not None and rag.retrieval is not None
    assert (rag.patterns.scales, rag.patterns.points, rag.patterns.dim) == ((8, 16, 32), 8, 16)


@pytest.mark.parametrize(("cond", "match"), [
    ({"regimes": 1}, r"model\.conditioning\.regimes"),
    ({"regime": 4}, r"model\.conditioning: unknown keys \['regime'\]"),
    ({"labels": {}, "patterns": {"scales": [8, 12]}}, r"model\.conditioning\.patterns\.scales"),
    ({"labels": {}, "patterns": {"library": {"index": {"kind": "lsh"}}}},
     r"model\.conditioning\.patterns\.library\.index\.kind"),
    ({"labels": {"covariance": "full_rank"}}, r"model\.conditioning\.labels\.covariance"),
    ({"retrieval": {"timeout_ms": 0}}, r"model\.conditioning\.retrieval\.timeout_ms"),
    ({"patterns": {}}, r"model\.conditioning\.patterns needs labels"),
])
def test_bad_conditioning_settings_are_config_errors(cond, match):
    with pytest.raises(ConfigError, match=match):
        ConditioningFit.from_config(cond)


def test_labels_and_library_are_fitted_on_the_training_fold_only():
    s = sample_set()
    fold = FoldIndex(fold=0, train=np.arange(0, 300), val=np.arange(0), test=np.arange(350, len(s)))
    cfg = ConditioningFit.from_config({"regimes": 3, "labels": {}, "patterns": {"scales": [8, 16], "dim": 4,
                                                                               "library": {"codebook": 8}}})
    a = fit_fold_conditioning(cfg, s, fold)
    query_a = a.queries.transform(s)
    # wreck everything outside the training windows: nothing fitted may change
    wrecked = s.end_row[fold.test].min() - s.seq_len
    s.regime[wrecked:] = 100.0 * np.random.default_rng(9).normal(size=s.regime[wrecked:].shape)
    s.features[wrecked:] = 50.0
    s.target[fold.test] = 1.0
    b = fit_fold_conditioning(cfg, s, fold)
    np.testing.assert_array_equal(a.labels["regime_label"][fold.train], b.labels["regime_label"][fold.train])
    np.testing.assert_array_equal(query_a[fold.train], b.queries.transform(s)[fold.train])
    np.testing.assert_array_equal(a.library.embedding, b.library.embedding)
    # the library holds the training decisions' patterns only (2 scales each)
    t_us = s.t.astype(np.int64)
    assert set(a.library.time.tolist()) == set(t_us[fold.train].tolist())
    assert len(a.library) == 2 * len(fold.train)
    assert 0.0 <= a.metrics["regime/switches_per_day"] <= 0.05


@pytest.mark.parametrize("kind", ["none", "puzzle_id"])
def test_variants_without_regime_fit_nothing(kind):
    s = sample_set()
    fold = FoldIndex(fold=0, train=np.arange(300), val=np.arange(0), test=np.arange(350, len(s)))
    out = fit_fold_conditioning(ConditioningFit.from_config(group(kind)), s, fold)
    assert out.regime_inputs is None and out.queries is None and out.labels == {}
    assert out.library is None and out.metrics == {}


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
                  t0=np.tile(ts_one, 2)[ends - 31],
                  target=rng.normal(size=len(ends)) * 0.01, next_return=np.zeros(len(ends)), symbols=["A", "B"],
                  row_symbol=np.repeat([0, 1], n).astype(np.int64), row_ts=np.tile(ts_one, 2),
                  feature_names=["f0", "f1"], regime_names=["shared", "shape"], seq_len=32, horizon=1)
    fold = FoldIndex(fold=0, train=np.arange(0, 400), val=np.arange(0), test=np.arange(450, len(ends)))

    def regime_inputs(out):
        """Each sample's regime input at its decision bar, as the batches carry it."""
        return np.nan_to_num(out.regime_inputs.transform(s)[s.end_row])

    for seed in (0, 1, 42):  # the verdict is the data's: the seed of the labels (and the run) does not move it
        out = fit_fold_conditioning(ConditioningFit.from_config({"regimes": 2, "labels": {"seed": seed}}), s, fold)
        assert out.metrics["conditioning/inputs_dropped"] == 1
        assert not regime_inputs(out)[:, 1].any() and regime_inputs(out)[:, 0].std() > 0.5
    kept = fit_fold_conditioning(ConditioningFit.from_config({"regimes": 2, "labels": {}, "max_input_mi_bits": None}),
                                 s, fold)
    assert kept.metrics["conditioning/inputs_dropped"] == 0 and regime_inputs(kept)[:, 1].std() > 0.5


def test_training_labels_after_a_test_block_carry_no_smoothing_state_from_it():
    # Test block in the middle (decisions 200..299), training on both sides right up to it; the first
    # training decision after it is the first bar whose window holds no test bar. The smoother and the
    # hysteresis must restart there, so test regimes turned upside down change no training label.
    s = sample_set()
    test = np.arange(200, 300)
    window_clear = s.t0 > s.t1[test].max()
    fold = FoldIndex(fold=0, train=np.concatenate([np.arange(0, 190), np.flatnonzero(window_clear)]),
                     val=np.arange(0), test=test)
    cfg = ConditioningFit.from_config({"regimes": 3, "labels": {"min_dwell": 60, "halflife": 40.0}})
    before = fit_fold_conditioning(cfg, s, fold).labels["regime_label"]
    rows = (s.row_ts >= s.t[test].min()) & (s.row_ts <= s.t1[test].max())
    s.regime[rows] = -3 * s.regime[rows]
    after = fit_fold_conditioning(cfg, s, fold).labels["regime_label"]
    np.testing.assert_array_equal(after[fold.train], before[fold.train])
    assert (after[test] != before[test]).any()  # the test labels do see their own bars
