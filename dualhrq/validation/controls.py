"""The negative control: training targets permuted in blocks of days.

A run whose training labels were shuffled (a "canary") has nothing true to
learn, so any edge it shows out of sample comes from the pipeline itself: a
test label reaching training, a look-ahead in the features, a backtest that
earns a return before the position is taken. The permutation moves whole
blocks of ``block_days`` consecutive decision days, the same block order for
every symbol, so the targets' autocorrelation and cross-sectional
correlation survive inside each block and only their link to the inputs is
broken. Blocks never span a gap in the index set (a test block with its
purge and embargo), and test rows are never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np

from dualhrq.config import PositiveInt, check_fields, check_value, one_of
from dualhrq.errors import ConfigError

SHUFFLE = "shuffle"
CONTROLS = (SHUFFLE,)


@dataclass(frozen=True)
class LabelShuffle:
    """``validation.control=shuffle``: permute each fold's training targets in blocks of ``block_days``.

    The default, 21 days, is a trading month: long enough to keep the volatility clustering and the
    overlap of multi-bar targets, short enough that a fold of a few years has dozens of blocks to permute.
    """

    block_days: PositiveInt = 21

    def __post_init__(self) -> None:
        check_fields(self)

    def permute(self, target: np.ndarray, t: np.ndarray, symbol_id: np.ndarray,
                index_sets: Sequence[np.ndarray], *, seed: int, fold: int) -> np.ndarray:
        """A copy of ``target`` whose rows in each of ``index_sets`` (a fold's training and validation
        samples) are permuted in blocks; every other row keeps its target.

        ``t`` are all samples' decision times: the calendar that tells where an index set has a gap.
        The permutation is drawn from ``(seed, fold)``, so each fold of each seed gets its own.
        """
        rng = np.random.default_rng([seed, fold])
        calendar = np.unique(t)
        out = target.copy()
        for k, index in enumerate(index_sets):
            index = np.asarray(index, dtype=np.int64)
            if len(index) == 0:
                continue
            days = np.unique(t[index])
            blocks = day_blocks(np.searchsorted(calendar, days), self.block_days)
            n_blocks = int(blocks.max()) + 1
            if n_blocks < 2:
                raise ConfigError(
                    f"shuffle_block_days={self.block_days} leaves fold {fold} one block of "
                    f"{len(days)} days in index set {k}, so nothing would be shuffled. Fix: lower it.",
                    field="shuffle_block_days")
            order = rng.permutation(n_blocks)
            while np.array_equal(order, np.arange(n_blocks)):  # the identity would shuffle nothing
                order = rng.permutation(n_blocks)
            rank = np.empty(n_blocks, dtype=np.int64)
            rank[order] = np.arange(n_blocks)
            by_time = index[np.lexsort((t[index], symbol_id[index]))]  # destination: each symbol in time order
            block = blocks[np.searchsorted(days, t[by_time])]
            source = by_time[np.lexsort((t[by_time], rank[block], symbol_id[by_time]))]  # blocks in drawn order
            out[by_time] = target[source]
        return out


def day_blocks(positions: np.ndarray, block_days: int) -> np.ndarray:
    """Block number of each day, given the days' sorted positions in the calendar: a new block starts
    after ``block_days`` days or at a gap (positions not consecutive)."""
    start = np.r_[True, np.diff(positions) > 1]
    segment = np.cumsum(start) - 1
    first = np.flatnonzero(start)
    offset = np.arange(len(positions)) - first[segment]
    new = start | (offset % block_days == 0)
    return np.cumsum(new) - 1


def label_control(control: str | None, block_days: int) -> LabelShuffle | None:
    """The control ``validation.control`` asks for (None: a normal run); fields named ``control``,
    ``shuffle_block_days``."""
    check_value("control", control, Annotated[str | None, one_of(CONTROLS)],
                "use shuffle for the shuffled-label negative control, or null for a normal run.")
    if control is None:
        return None
    return LabelShuffle(check_value("shuffle_block_days", block_days, PositiveInt))
