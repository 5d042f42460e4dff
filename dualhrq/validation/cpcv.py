"""Combinatorial purged k-fold cross-validation (CPCV).

López de Prado, *Advances in Financial Machine Learning* (2018): purging and
embargo (ch. 7) stop labels that overlap the test period from leaking into
training; the combinatorial split (ch. 12) tests every choice of ``k`` of
``N`` time groups, so out-of-sample predictions recombine into
``C(N-1, k-1)`` full backtest paths instead of the single walk-forward path.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from dualhrq.config import NonNegativeInt, PositiveInt, at_least, check_value, invalid
from dualhrq.errors import ConfigError, DataError

__all__ = ["CombinatorialPurgedKFold", "effective_embargo_days", "purge_and_embargo", "block_spans"]


class CombinatorialPurgedKFold:
    """Split samples into ``n_groups`` time groups and test every ``n_test_groups`` of them.

    Groups are contiguous, near-equal blocks of the sorted unique decision
    dates, so all symbols sharing a date land in the same group and input
    order does not matter. Fold ``f`` tests the ``f``-th combination of
    groups in ``itertools.combinations`` order; its training set is every
    other sample, purged on both sides and embargoed after each block of
    adjacent test groups, with every input window kept clear of test bars
    (see :func:`purge_and_embargo`).

    Parameters
    ----------
    n_groups : int
        ``N`` >= 2, the number of time groups.
    n_test_groups : int
        ``k`` with 1 <= k < N, groups tested per fold.
    purge_days, embargo_days : int
        Trading days (>= 0) added on both sides of (purge) and after
        (embargo) each test block; see :func:`purge_and_embargo`.
    """

    def __init__(
        self, n_groups: int = 5, n_test_groups: int = 1, purge_days: int = 14, embargo_days: int = 7
    ) -> None:
        check_value("n_groups", n_groups, Annotated[int, at_least(2)])
        check_value("n_test_groups", n_test_groups, PositiveInt)
        if n_test_groups >= n_groups:
            raise invalid("n_test_groups", n_test_groups, f"smaller than n_groups ({n_groups})",
                          f"set it to a value between 1 and {n_groups - 1}.")
        check_value("purge_days", purge_days, NonNegativeInt)
        check_value("embargo_days", embargo_days, NonNegativeInt)
        self.n_groups = int(n_groups)
        self.n_test_groups = int(n_test_groups)
        self.purge_days = int(purge_days)
        self.embargo_days = int(embargo_days)
        self._folds = tuple(itertools.combinations(range(self.n_groups), self.n_test_groups))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_groups={self.n_groups}, n_test_groups={self.n_test_groups}, "
            f"purge_days={self.purge_days}, embargo_days={self.embargo_days})"
        )

    def get_n_splits(self) -> int:
        """Number of folds, ``C(N, k)``."""
        return len(self._folds)

    @property
    def n_paths(self) -> int:
        """Number of backtest paths, ``k/N * C(N, k) = C(N-1, k-1)`` (AFML eq. 12.1)."""
        return math.comb(self.n_groups - 1, self.n_test_groups - 1)

    def test_groups(self, fold: int) -> tuple[int, ...]:
        """Groups tested by ``fold`` (an index in ``range(get_n_splits())``)."""
        return self._folds[fold]

    def path_folds(self) -> np.ndarray:
        """Fold whose test predictions of group ``g`` form part of path ``p``, as ``[N, n_paths]``.

        AFML 12.4: each group is tested by ``C(N-1, k-1)`` folds; the ``p``-th
        of them (in fold order) supplies that group's predictions to path
        ``p``. So every path covers every group once, and every (fold, tested
        group) pair is used by exactly one path.
        """
        return np.array(
            [[f for f, groups in enumerate(self._folds) if g in groups] for g in range(self.n_groups)],
            dtype=np.int64,
        )

    def groups(self, t: np.ndarray) -> np.ndarray:
        """Group of each sample: its decision date's block among N contiguous, near-equal date blocks."""
        dates, date_pos = np.unique(np.asarray(t), return_inverse=True)
        if len(dates) < self.n_groups:
            raise DataError(
                f"CPCV needs at least n_groups={self.n_groups} distinct decision dates, "
                f"got {len(dates)}; lower the splitter's n_groups or supply more dates."
            )
        sizes = [len(b) for b in np.array_split(np.arange(len(dates)), self.n_groups)]
        return np.repeat(np.arange(self.n_groups), sizes)[date_pos]

    def split(self, t: np.ndarray, t1: np.ndarray, t0: np.ndarray | None = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` per fold: sorted int64 positions into ``t``.

        Parameters
        ----------
        t, t1 : np.ndarray
            Decision time and label end time (``t1 >= t``) of each sample,
            datetime64 of equal length, in any order.
        t0 : np.ndarray, optional
            Time of the oldest bar each sample's inputs depend on (``t0 <= t``:
            its window start less the features' lookback); ``t`` when omitted.

        Raises
        ------
        DataError
            Fewer unique decision dates than groups, or a label ending before it starts.
        ConfigError
            A fold has no training sample left after purging and embargo.
        """
        pos = _positions(t, t1, t0)
        group = self.groups(t)
        for fold, groups in enumerate(self._folds):
            in_test = np.isin(group, groups)
            test_idx = np.flatnonzero(in_test)
            candidates = np.flatnonzero(~in_test)
            train_idx = _purge(candidates, test_idx, pos, self.purge_days, self.embargo_days)
            if train_idx.size == 0:
                raise ConfigError(
                    f"purge_days={self.purge_days} and embargo_days={self.embargo_days} leave CPCV fold {fold} "
                    f"(test groups {groups}) no training sample: all {candidates.size} of its non-test samples "
                    "fall in the purge or embargo window, or read test bars through their input window. "
                    "Fix: lower purge_days / embargo_days, or use more data or more n_groups.", field="purge_days")
            yield train_idx, test_idx


def purge_and_embargo(
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    t: np.ndarray,
    t1: np.ndarray,
    *,
    purge_days: int,
    embargo_days: int,
    t0: np.ndarray | None = None,
) -> np.ndarray:
    """Remove from ``train_idx`` every sample whose information touches a test block (AFML 7.4, both sides).

    Time is counted in trading days: the calendar is the sorted unique values
    of ``t`` and ``t1`` together, and ``d(x)`` is the position of ``x`` in it
    (of the first calendar day at or after ``x`` for a ``t0``). Test samples
    are cut into blocks: maximal runs of consecutive decision dates (unique
    values of ``t``) holding a test sample, so adjacent CPCV test groups form
    one block. A block spans ``[a, b]``, ``a`` the earliest ``t`` and ``b``
    the latest ``t1`` of its test samples. A training sample knows the bars
    ``[t0_i, t1_i]``: its inputs from ``t0_i`` (window start less the
    features' lookback; ``t0 = t`` when not given) and its label to ``t1_i``.
    It is dropped when that interval comes within the margins of a block:

        ``d(t1_i) >= d(a) - purge_days``  and  ``d(t0_i) <= d(b) + purge_days + embargo_days``.

    With zero margins this is the plain overlap rule: no training label ends
    inside a test block (AFML's purge) and no training input reads a test bar,
    so an input window longer than the embargo is purged whole. ``purge_days``
    widens the block on both sides, as in skfolio's ``CombinatorialPurgedCV``:
    serial correlation runs both ways in time. ``embargo_days`` is added
    after the block only (AFML 7.4.2). Overlap is inclusive.
    Returns the kept training positions, sorted, as int64.
    """
    check_value("purge_days", purge_days, NonNegativeInt)
    check_value("embargo_days", embargo_days, NonNegativeInt)
    pos = _positions(t, t1, t0)
    train_idx = np.asarray(train_idx, dtype=np.int64)
    test_idx = np.asarray(test_idx, dtype=np.int64)
    return _purge(train_idx, test_idx, pos, purge_days, embargo_days)


def block_spans(t: np.ndarray, t1: np.ndarray, test_idx: np.ndarray) -> list[tuple[np.datetime64, np.datetime64]]:
    """``(a, b)`` of every block of ``test_idx`` (see :func:`purge_and_embargo`), in time order."""
    pos = _positions(t, t1)
    calendar = np.unique(np.concatenate([np.asarray(t), np.asarray(t1)]))
    return [(calendar[a], calendar[b]) for a, b in zip(*_blocks(np.asarray(test_idx, np.int64), pos))]


def effective_embargo_days(t: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray) -> int:
    """Decision dates between a test block's last decision and the next training decision, most over blocks.

    What purging, the embargo and the input window leave out after the test data in practice (blocks
    followed by no training sample are not counted); 0 without such a block.
    """
    dates, date_pos = np.unique(np.asarray(t), return_inverse=True)
    is_test = np.zeros(len(dates), dtype=bool)
    is_test[date_pos[test_idx]] = True
    train_dates = np.unique(date_pos[train_idx])
    ends = np.flatnonzero(is_test & ~np.r_[is_test[1:], False])
    nxt = np.searchsorted(train_dates, ends, side="right")
    gaps = train_dates[nxt[nxt < len(train_dates)]] - ends[nxt < len(train_dates)] - 1
    return int(gaps.max(initial=0))


@dataclass(frozen=True)
class _Positions:
    """Trading-day positions of each sample's ``t0``, ``t``, ``t1``, and its decision-date index."""

    t0: np.ndarray
    t: np.ndarray
    t1: np.ndarray
    date: np.ndarray


def _blocks(test_idx: np.ndarray, pos: _Positions) -> tuple[np.ndarray, np.ndarray]:
    """Start and end calendar positions of each block of consecutive test decision dates."""
    is_test_date = np.zeros(int(pos.date.max()) + 1, dtype=bool)
    is_test_date[pos.date[test_idx]] = True
    run_of_date = np.cumsum(is_test_date & ~np.r_[False, is_test_date[:-1]]) - 1
    run = run_of_date[pos.date[test_idx]]
    n_runs = int(run.max()) + 1 if run.size else 0
    start = np.full(n_runs, np.iinfo(np.int64).max)
    end = np.full(n_runs, -1)
    np.minimum.at(start, run, pos.t[test_idx])
    np.maximum.at(end, run, pos.t1[test_idx])
    return start, end


def _purge(train_idx: np.ndarray, test_idx: np.ndarray, pos: _Positions, purge_days: int,
           embargo_days: int) -> np.ndarray:
    """:func:`purge_and_embargo` on precomputed positions."""
    s, e = pos.t0[train_idx], pos.t1[train_idx]
    keep = np.ones(train_idx.size, dtype=bool)
    for a, b in zip(*_blocks(test_idx, pos)):
        keep &= ~((e >= a - purge_days) & (s <= b + purge_days + embargo_days))
    return np.sort(train_idx[keep]).astype(np.int64)


def _positions(t: np.ndarray, t1: np.ndarray, t0: np.ndarray | None = None) -> _Positions:
    """Trading-day positions of ``t0``, ``t`` and ``t1``, and each sample's decision-date index."""
    t, t1 = np.asarray(t), np.asarray(t1)
    if t.ndim != 1 or t.shape != t1.shape or t.size == 0:
        raise DataError(
            f"t and t1 must be non-empty 1-D arrays of equal length, got shapes {t.shape} and {t1.shape}."
        )
    if t.dtype.kind == "M" and (np.isnat(t).any() or np.isnat(t1).any()):
        raise DataError("t and t1 contain NaT; drop samples without a decision or label end time.")
    bad = np.flatnonzero(t1 < t)
    if bad.size:
        raise DataError(
            f"{bad.size} samples have a label end t1 before their decision time t "
            f"(first at position {bad[0]}: t={t[bad[0]]}, t1={t1[bad[0]]}); fix the label construction."
        )
    t0 = t if t0 is None else np.asarray(t0)
    if t0.shape != t.shape or (t0.dtype.kind == "M" and np.isnat(t0).any()) or (t0 > t).any():
        raise DataError(f"t0 must be one time per sample, none after its decision time t, got shape {t0.shape}; "
                        "it is the oldest bar a sample's inputs read.")
    calendar = np.unique(np.concatenate([t, t1]))
    return _Positions(t0=np.searchsorted(calendar, t0), t=np.searchsorted(calendar, t),
                      t1=np.searchsorted(calendar, t1), date=np.searchsorted(np.unique(t), t))
