"""The shuffled-label control's block permutation: its invariants, checked on a small calendar."""

from __future__ import annotations

import numpy as np
import pytest

from dualhrq.errors import ConfigError
from dualhrq.validation.controls import LabelShuffle, day_blocks, label_control

N_DAYS, BLOCK = 300, 10


def market(missing_day: int | None = 37):
    """Samples ordered (t, symbol) like ``build_samples``: 2 symbols, the second lacking ``missing_day``.
    Each target is unique, so where it ends up identifies where it came from."""
    days = np.datetime64("2020-01-01") + np.arange(N_DAYS).astype("timedelta64[D]")
    t, sym = np.repeat(days, 2), np.tile([0, 1], N_DAYS)
    keep = ~((sym == 1) & (t == days[missing_day])) if missing_day is not None else np.ones(len(t), bool)
    t, sym = t[keep].astype("datetime64[us]"), sym[keep]
    target = np.random.default_rng(0).standard_normal(len(t))
    day = np.searchsorted(np.unique(t), t)
    # a fold: test days 120..169 with a gap (purge, embargo) of 5 days each side; validation days 280..
    test = np.flatnonzero((day >= 120) & (day < 170))
    train = np.flatnonzero((day < 115) | ((day >= 175) & (day < 275)))
    val = np.flatnonzero(day >= 280)
    return target, t, sym, day, train, val, test


def permuted(seed=0, fold=0, **kw):
    target, t, sym, day, train, val, test = market(**kw)
    out = LabelShuffle(BLOCK).permute(target, t, sym, [train, val], seed=seed, fold=fold)
    return target, out, t, sym, day, train, val, test


def test_day_blocks_worked_by_hand():
    # positions 0..4 (a run of 5), gap, 7..9, gap, 11: blocks of 3 days never span a gap
    positions = np.array([0, 1, 2, 3, 4, 7, 8, 9, 11])
    np.testing.assert_array_equal(day_blocks(positions, 3), [0, 0, 0, 1, 1, 2, 2, 2, 3])
    np.testing.assert_array_equal(day_blocks(np.arange(4), 1), [0, 1, 2, 3])


def test_test_rows_keep_their_targets_and_each_set_keeps_its_multiset():
    target, out, _, _, _, train, val, test = permuted()
    np.testing.assert_array_equal(out[test], target[test])
    for index in (train, val):
        np.testing.assert_array_equal(np.sort(out[index]), np.sort(target[index]))
    assert np.mean(out[train] != target[train]) > 0.8  # something was shuffled


def test_every_block_moves_whole_and_in_order_within_its_symbol():
    target, out, t, sym, day, train, val, _ = permuted()
    for index in (train, val):
        set_days = np.unique(day[index])  # calendar positions of the set's days, over all symbols
        for s in (0, 1):
            rows = index[sym[index] == s]
            rows = rows[np.argsort(t[rows])]
            days = day[rows]
            blocks = day_blocks(set_days, BLOCK)[np.searchsorted(set_days, days)]
            shuffled = out[rows]
            for b in np.unique(blocks):
                source = target[rows[blocks == b]]
                # the block's targets form one contiguous run of the output, in their original order
                start = int(np.flatnonzero(shuffled == source[0])[0])
                np.testing.assert_array_equal(shuffled[start:start + len(source)], source)
                # and the block itself covered consecutive calendar days, at most BLOCK of them
                block_days = set_days[day_blocks(set_days, BLOCK) == b]
                assert len(block_days) <= BLOCK and np.all(np.diff(block_days) == 1)


def test_the_same_block_order_serves_every_symbol():
    """With both symbols on every day, a symbol-1 target equal to symbol 0's plus 1000 stays so."""
    target, t, sym, _, train, val, _ = market(missing_day=None)
    target[sym == 1] = target[sym == 0] + 1000.0
    out = LabelShuffle(BLOCK).permute(target, t, sym, [train, val], seed=3, fold=1)
    np.testing.assert_allclose(out[sym == 1] - out[sym == 0], 1000.0)


def test_each_seed_and_fold_draws_its_own_permutation_reproducibly():
    base = permuted(seed=0, fold=0)[1]
    np.testing.assert_array_equal(base, permuted(seed=0, fold=0)[1])
    assert not np.array_equal(base, permuted(seed=0, fold=1)[1])
    assert not np.array_equal(base, permuted(seed=1, fold=0)[1])


def test_a_block_as_long_as_the_set_is_refused():
    target, t, sym, _, train, val, _ = market()
    with pytest.raises(ConfigError, match=r"^shuffle_block_days=400 leaves fold 2 one block"):
        LabelShuffle(400).permute(target, t, sym, [train, val], seed=0, fold=2)


def test_label_control_reads_the_config_values():
    assert label_control(None, 21) is None
    assert label_control("shuffle", 5) == LabelShuffle(5)
    with pytest.raises(ConfigError, match=r"^control must be one of \['shuffle'\] or null, got 'shufle'"):
        label_control("shufle", 21)
    with pytest.raises(ConfigError, match=r"^shuffle_block_days must be a positive integer, got 0"):
        label_control("shuffle", 0)


def test_two_blocks_are_always_swapped():
    """The identity is never drawn, so even a set of two blocks is shuffled, for every seed."""
    t = (np.datetime64("2020-01-01") + np.arange(4).astype("timedelta64[D]")).astype("datetime64[us]")
    target, index = np.arange(4.0), np.arange(4)
    for seed in range(20):
        out = LabelShuffle(2).permute(target, t, np.zeros(4, np.int64), [index], seed=seed, fold=0)
        np.testing.assert_array_equal(out, [2.0, 3.0, 0.0, 1.0])
