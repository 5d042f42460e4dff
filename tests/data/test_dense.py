"""Dense windows: every bar's label against a hand-built panel, strided prediction's plan against brute force,
and the purge invariant for every supervised bar."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.data.dense import row_sample, strided_windows
from dualhrq.data.samples import SampleSet, build_samples
from dualhrq.pipeline.inputs import TransformedSamples
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.folds import make_folds

CLOSES = {"AAA": [100, 101, 99, 102, 104, 103, 105, 106, 104, 107],
          "BBB": [50, 51, 52, 50, 49, 51, 53, 52, 54]}
SCALE = 0.5


def panel() -> pl.DataFrame:
    parts = []
    for k, (symbol, closes) in enumerate(CLOSES.items()):
        start = datetime(2021, 3, 1) + timedelta(days=k)  # BBB starts a day later
        parts.append(pl.DataFrame({"ts": [start + timedelta(days=i) for i in range(len(closes))], "symbol": symbol,
                                   "close": np.asarray(closes, dtype=float), "f0": np.arange(len(closes), dtype=float),
                                   "r0": np.arange(len(closes), dtype=float) * 10}))
    return pl.concat(parts)


def hand_samples(seq_len: int = 4) -> SampleSet:
    return build_samples(panel(), ["f0"], ["r0"], seq_len=seq_len, horizon=1)


def transformed(s: SampleSet) -> TransformedSamples:
    return TransformedSamples(samples=s, features=s.features, regime=s.regime, target_scale=SCALE,
                              symbol_id=s.symbol_id)


def index_of(s: SampleSet, symbol: str, bar: int) -> int:
    """The sample whose window ends at ``bar`` of ``symbol``."""
    row = np.searchsorted(s.row_symbol, s.symbols.index(symbol)) + bar
    return int(np.flatnonzero(s.end_row == row)[0])


def item_of(s: SampleSet, symbol: str, bar: int, **kwargs) -> dict:
    return transformed(s).dataset(np.arange(len(s)), **kwargs)[index_of(s, symbol, bar)]


def test_every_supervised_bar_has_its_own_label_hand_worked():
    s = hand_samples()
    c = CLOSES["AAA"]
    item = item_of(s, "AAA", 5, supervised=2)  # rows 2..5 of AAA, the last two supervised
    np.testing.assert_array_equal(item["supervised"].numpy(), [False, False, True, True])
    np.testing.assert_allclose(item["target_z_seq"].numpy()[2:], [np.log(c[5] / c[4]) / SCALE,
                                                                   np.log(c[6] / c[5]) / SCALE], rtol=1e-6)
    np.testing.assert_allclose(item["next_return_seq"].numpy()[2:], [c[5] / c[4] - 1, c[6] / c[5] - 1], rtol=1e-6)
    days = (item["date_seq"].numpy()[2:] - item["date_seq"].numpy()[3]) // 86_400_000_000
    np.testing.assert_array_equal(days, [-1, 0])
    assert item["date_seq"][3] == item["date"]  # the decision bar's own label is the window's
    assert item["target_z_seq"][3] == item["target_z"]
    np.testing.assert_array_equal(item["regime_seq"].numpy()[:, 0], [20, 30, 40, 50])


def test_a_bar_that_is_no_sample_is_not_supervised():
    s = hand_samples()
    first = item_of(s, "BBB", 3, supervised=3)  # BBB's first full window: bars 0..2 end no window of their own
    np.testing.assert_array_equal(first["supervised"].numpy(), [False, False, False, True])
    last = item_of(s, "AAA", 8, supervised=4)  # AAA bar 9 has no label: the window ending there is no sample
    np.testing.assert_array_equal(last["supervised"].numpy(), [True, True, True, True])
    assert len(s) == (10 - 3 - 1) + (9 - 3 - 1)


def test_a_replaced_target_reaches_every_bar():
    s = hand_samples()
    control = np.arange(len(s), dtype=np.float32) + 0.5
    j = index_of(s, "AAA", 6)
    item = transformed(s).dataset(np.arange(len(s)), extras={"target_z": control}, supervised=3)[j]
    bars = row_sample(s)[s.end_row[j] - 2:s.end_row[j] + 1]
    np.testing.assert_array_equal(item["target_z_seq"].numpy()[1:], control[bars])
    assert item["target_z"] == control[j]


@pytest.mark.parametrize("stride", [1, 2, 3, 5])
def test_strided_plan_decides_every_requested_sample_once_from_a_window_at_or_after_it(stride):
    s = hand_samples(seq_len=3)
    rng = np.random.default_rng(stride)
    index = rng.permutation(np.flatnonzero(rng.uniform(size=len(s)) > 0.2))
    plan = strided_windows(s, index, stride)
    assert len(plan.slot) == len(plan.back) == len(index)
    window = plan.windows[plan.slot]
    assert set(plan.windows) <= set(index)
    np.testing.assert_array_equal(s.end_row[window] - plan.back, s.end_row[index])  # read at its own bar
    np.testing.assert_array_equal(s.symbol_id[window], s.symbol_id[index])
    assert ((plan.back >= 0) & (plan.back < stride)).all()
    # brute force: runs of consecutive requested bars per symbol need ceil(len / stride) windows each
    rows = np.sort(s.end_row[index])
    runs = np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1)
    assert len(plan.windows) == sum(-(-len(r) // stride) for r in runs)


def test_a_stride_of_one_runs_every_window():
    s = hand_samples()
    plan = strided_windows(s, np.arange(len(s))[::-1], 1)
    np.testing.assert_array_equal(plan.windows[plan.slot], np.arange(len(s))[::-1])
    assert not plan.back.any()


def random_walk(n_days: int = 360, seed: int = 0) -> SampleSet:
    rng = np.random.default_rng(seed)
    days = [datetime(2015, 1, 1) + timedelta(days=i) for i in range(n_days)]
    frame = pl.concat([pl.DataFrame({"ts": days, "symbol": name, "close": 100 * np.exp(np.cumsum(
        rng.normal(0, 0.01, n_days))), "f0": rng.normal(size=n_days), "r0": rng.normal(size=n_days)})
        for name in ("AAA", "BBB")])
    return build_samples(frame, ["f0"], ["r0"], seq_len=16, horizon=3, lookback=2)


def overlaps(s: SampleSet, train: np.ndarray, test: np.ndarray, bars: int, margin: tuple[int, int] = (0, 0)) -> int:
    """How many supervised bars of the ``train`` windows have a label within ``margin`` (trading days before,
    after) of a test label; each bar's label is the sample ending there."""
    calendar = np.unique(np.concatenate([s.t, s.t1]))
    d_t, d_t1 = np.searchsorted(calendar, s.t), np.searchsorted(calendar, s.t1)
    covered = np.zeros(len(calendar) + 1, dtype=np.int64)
    for a, b in zip(d_t[test], d_t1[test], strict=True):
        covered[max(a - margin[0], 0):b + margin[1] + 1] = 1
    prefix = np.r_[0, np.cumsum(covered)]
    rows = (s.end_row[train, None] - np.arange(bars)[None, :]).ravel()
    bar = row_sample(s)[rows]
    bar = bar[bar >= 0]
    return int(((prefix[d_t1[bar] + 1] - prefix[d_t[bar]]) > 0).sum())


def test_no_supervised_bar_of_a_purged_training_set_has_a_label_overlapping_a_test_label():
    s, bars = random_walk(), 12
    splitter = CombinatorialPurgedKFold(n_groups=5, n_test_groups=1, purge_days=2, embargo_days=3)
    for fold in make_folds(splitter, s.t, s.t1, val_fraction=0.1, t0=s.t0):
        assert overlaps(s, fold.train, fold.test, bars) == 0
        assert overlaps(s, fold.train, fold.val, bars) == 0
        # the margins hold too: purge before a test label, purge + embargo after it
        assert overlaps(s, fold.train, fold.test, bars, margin=(2, 2 + 3)) == 0


def test_purging_decision_bars_alone_would_leave_supervised_bars_on_test_labels():
    s, bars = random_walk(), 12
    splitter = CombinatorialPurgedKFold(n_groups=5, n_test_groups=1, purge_days=2, embargo_days=3)
    leaks = sum(overlaps(s, f.train, f.test, bars) for f in make_folds(splitter, s.t, s.t1, val_fraction=0.0))
    assert leaks > 0  # without t0 the window's start is not purged, and its earlier bars' labels are test labels
    last_bar_only = sum(overlaps(s, f.train, f.test, 1) for f in make_folds(splitter, s.t, s.t1, val_fraction=0.0))
    assert last_bar_only == 0
