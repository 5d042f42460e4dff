"""CombinatorialPurgedKFold: hand-worked folds, a brute-force reference and invariants."""

import itertools
import math

import numpy as np
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.validation.cpcv import CombinatorialPurgedKFold, effective_embargo_days, purge_and_embargo

# Ten business days Mon 2024-01-01 .. Fri 2024-01-12, two symbols each; sample i
# is decided on day i // 2 and its label ends on the next business day.
DAYS = np.busday_offset("2024-01-01", np.arange(11), roll="forward")
T = np.repeat(DAYS[:10], 2)
T1 = np.repeat(DAYS[1:], 2)


def _samples(days):
    return np.flatnonzero(np.isin(np.arange(20) // 2, days))


def _folds(cv, t, t1, t0=None):
    return [(train.tolist(), test.tolist()) for train, test in cv.split(t, t1, t0)]


def test_hand_worked_purge_counts_trading_days_across_a_weekend():
    # N=10 gives one day per group; fold 5 tests Mon Jan 8 (calendar position 5),
    # its label ends Tue (position 6). Purge 2 trading days on both sides: window [3, 8]
    # drops the samples decided on days 2 (label ends day 3), 3, 4, 6, 7 and 8; a
    # 2-calendar-day purge would reach back only to Sat Jan 6 and keep day 2.
    cv = CombinatorialPurgedKFold(n_groups=10, n_test_groups=1, purge_days=2, embargo_days=0)
    train, test = _folds(cv, T, T1)[5]
    assert test == [10, 11]
    assert train == _samples([0, 1, 9]).tolist()
    # an embargo of 1 more trading day after the block also drops day 9
    cv = CombinatorialPurgedKFold(n_groups=10, n_test_groups=1, purge_days=2, embargo_days=1)
    assert _folds(cv, T, T1)[5][0] == _samples([0, 1]).tolist()


def test_hand_worked_input_windows_are_purged_whole():
    # Same fold (test day 5, label to 6), no purge or embargo. Inputs reading back 3 days
    # (t0 = t - 3 trading days) reach the test block from days 7, 8 and 9 (t0 = 4, 5, 6),
    # so only days 0..3 (labels end before day 5) are left; with t0 = t, days 7..9 stay.
    cv = CombinatorialPurgedKFold(n_groups=10, n_test_groups=1, purge_days=0, embargo_days=0)
    t0 = np.repeat(DAYS[np.maximum(np.arange(10) - 3, 0)], 2)
    assert _folds(cv, T, T1)[5][0] == _samples([0, 1, 2, 3, 7, 8, 9]).tolist()
    assert _folds(cv, T, T1, t0)[5][0] == _samples([0, 1, 2, 3]).tolist()
    kept = purge_and_embargo(np.arange(20), np.array([10, 11]), T, T1, t0=t0, purge_days=0, embargo_days=0)
    assert kept.tolist() == _samples([0, 1, 2, 3]).tolist()


def test_hand_worked_two_test_blocks():
    # N=5 groups of two days; fold 5 = groups (1, 3): blocks days 2-3 (span
    # positions [2, 4]) and days 6-7 (span [6, 8]). Purge 0 drops day 1 (label ends
    # on 2), days 4, 5 (label ends on 6) and 8; embargo 1 drops days 5 and 9.
    cv = CombinatorialPurgedKFold(n_groups=5, n_test_groups=2, purge_days=0, embargo_days=1)
    assert cv.test_groups(5) == (1, 3)
    train, test = _folds(cv, T, T1)[5]
    assert test == _samples([2, 3, 6, 7]).tolist()
    assert train == [0, 1]
    kept = purge_and_embargo(np.arange(20), np.array(test), T, T1, purge_days=0, embargo_days=1)
    assert kept.tolist() == [0, 1]


def test_empty_training_set_names_the_fields_and_the_fold_size():
    # Groups (0, 3) with purge 1 and embargo 1 remove all 12 non-test samples.
    cv = CombinatorialPurgedKFold(n_groups=5, n_test_groups=2, purge_days=1, embargo_days=1)
    message = r"^purge_days=1 and embargo_days=1 leave CPCV fold 2 .*all 12 "
    with pytest.raises(ConfigError, match=message) as err:
        _folds(cv, T, T1)
    assert err.value.field == "purge_days"  # the splitter's own field; its reader adds the config path


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_groups": 1}, "n_groups"),
        ({"n_groups": 4.0}, "n_groups"),
        ({"n_test_groups": 0}, "n_test_groups"),
        ({"n_groups": 4, "n_test_groups": 4}, "n_test_groups"),
        ({"purge_days": -1}, "purge_days"),
        ({"embargo_days": -2}, "embargo_days"),
        ({"embargo_days": True}, "embargo_days"),
    ],
)
def test_invalid_config_names_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field} must be ") as err:
        CombinatorialPurgedKFold(**kwargs)
    assert err.value.field == field


def test_bad_data():
    cv = CombinatorialPurgedKFold(n_groups=11)
    with pytest.raises(DataError, match="distinct decision dates"):
        next(cv.split(T, T1))
    with pytest.raises(DataError, match="before their decision time"):
        next(CombinatorialPurgedKFold().split(T1, T))


def test_counts():
    for n in range(2, 10):
        for k in range(1, n):
            cv = CombinatorialPurgedKFold(n_groups=n, n_test_groups=k)
            assert cv.get_n_splits() == math.comb(n, k)
            assert cv.n_paths == k * math.comb(n, k) // n == math.comb(n - 1, k - 1)


def test_path_folds_cover_every_group_and_fold_once():
    for n in range(2, 9):
        for k in range(1, n):
            cv = CombinatorialPurgedKFold(n_groups=n, n_test_groups=k)
            paths = cv.path_folds()
            assert paths.shape == (n, cv.n_paths)
            pairs = [(int(paths[g, p]), g) for g in range(n) for p in range(cv.n_paths)]
            assert all(g in cv.test_groups(f) for f, g in pairs)
            expected = {(f, g) for f in range(cv.get_n_splits()) for g in cv.test_groups(f)}
            assert len(pairs) == len(set(pairs)) and set(pairs) == expected


def _random_panel(rng):
    """Shuffled samples of a few symbols on business days with gaps and random label lengths."""
    n_dates = int(rng.integers(15, 60))
    days = np.busday_offset("2020-01-01", np.cumsum(rng.integers(1, 3, n_dates + 10)), roll="forward")
    t_pos, t1_pos = [], []
    for _ in range(int(rng.integers(1, 4))):
        on = np.flatnonzero(rng.random(n_dates) < 0.8)
        t_pos.append(on)
        t1_pos.append(on + rng.integers(0, 7, on.size))
    t_pos, t1_pos = np.concatenate(t_pos), np.concatenate(t1_pos)
    order = rng.permutation(t_pos.size)
    return days[t_pos[order]], days[t1_pos[order]]


def _reference_folds(t, t1, t0, n, k, purge, embargo):
    """Brute force: groups by position in the sorted dates, one window per run of adjacent test groups;
    a training sample may not know any bar within ``purge`` days before to ``purge + embargo`` after one."""
    calendar = np.unique(np.concatenate([t, t1]))
    cal = {d: i for i, d in enumerate(calendar)}
    s = np.array([cal[d] for d in t])
    e = np.array([cal[d] for d in t1])
    s0 = np.array([sum(c < d for c in calendar) for d in t0])  # first calendar day at or after t0
    dates = np.unique(t)
    group_of_date = {d: g for g, block in enumerate(np.array_split(dates, n)) for d in block}
    group = np.array([group_of_date[d] for d in t])
    folds = []
    for combo in itertools.combinations(range(n), k):
        runs = [[combo[0]]]
        for g in combo[1:]:
            if g == runs[-1][-1] + 1:
                runs[-1].append(g)
            else:
                runs.append([g])
        spans = [(s[np.isin(group, r)].min(), e[np.isin(group, r)].max()) for r in runs]
        test = [i for i in range(t.size) if group[i] in combo]
        train = [
            i
            for i in range(t.size)
            if group[i] not in combo
            and not any(set(range(s0[i], e[i] + 1)) & set(range(a - purge, b + purge + embargo + 1))
                        for a, b in spans)
        ]
        folds.append((train, test, spans))
    return s0, e, folds


def test_random_configurations_match_reference_and_invariants():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(200):
        t, t1 = _random_panel(rng)
        t0 = t - rng.integers(0, 5, t.size).astype("timedelta64[D]")  # input windows, some before the calendar
        n = int(rng.integers(2, min(7, np.unique(t).size) + 1))
        k = int(rng.integers(1, n))
        purge, embargo = int(rng.integers(0, 5)), int(rng.integers(0, 5))
        cv = CombinatorialPurgedKFold(n, k, purge, embargo)
        s, e, reference = _reference_folds(t, t1, t0, n, k, purge, embargo)
        if any(not train for train, _, _ in reference):
            with pytest.raises(ConfigError):
                list(cv.split(t, t1, t0))
            continue
        folds = list(cv.split(t, t1, t0))
        assert len(folds) == cv.get_n_splits()
        times_tested = np.zeros(t.size, dtype=int)
        for (train, test), (ref_train, ref_test, spans) in zip(folds, reference):
            for idx in (train, test):
                assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
            assert train.tolist() == ref_train and test.tolist() == ref_test
            assert np.intersect1d(train, test).size == 0
            for a, b in spans:  # no training sample knows a bar of the widened block
                assert not np.any((s[train] <= b + purge + embargo) & (e[train] >= a - purge))
            times_tested[test] += 1
        assert np.all(times_tested == cv.n_paths)
        checked += 1
    assert checked > 100


def test_effective_embargo_counts_the_decision_dates_left_out_after_a_block():
    # Fold 3 tests day 3 (label to day 4). Inputs reading back 3 days: the first later training decision
    # whose window starts after day 4 is day 8, so days 4..7 (4 decision dates) are left out.
    cv = CombinatorialPurgedKFold(n_groups=10, n_test_groups=1, purge_days=0, embargo_days=0)
    t0 = np.repeat(DAYS[np.maximum(np.arange(10) - 3, 0)], 2)
    train, test = list(cv.split(T, T1, t0))[3]
    assert train.tolist() == _samples([0, 1, 8, 9]).tolist()  # day 2: its label ends on day 3
    assert effective_embargo_days(T, train, test) == 4
    assert effective_embargo_days(T, *list(cv.split(T, T1))[3]) == 1  # day 4 decides inside the test label
    assert effective_embargo_days(T, *list(cv.split(T, T1, t0))[9]) == 0  # no training after the last block
