"""Training batches of whole, contiguous dates.

The trading objective (``dualhrq.models.objective``) replays a batch as the
backtest replays a path: per-date portfolio returns, costs on each symbol's
position changes from one date to the next. That needs every batch to hold
all the samples of a run of consecutive dates. A batch is ``slots`` such
blocks, one for each deep-supervision slot (``dualhrq.models.carry``), each
block all the samples of its own run of consecutive dates, sorted by date, and
every block of the same number of dates. The run length is chosen so that a
batch holds about ``batch_size`` samples; each epoch shifts the block
boundaries by a random offset and shuffles the blocks' order, both drawn from
(``seed``, epoch) alone, so a seeded job sees the same batches and a resumed
one (``dualhrq.training.resume``) can start an epoch at any batch. Under a
distributed run every process draws the same order and takes every
``world_size``-th block from its rank (Lightning's ``use_distributed_sampler``
is off for this reason: it cannot shard a custom batch sampler).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

from dualhrq.config import positive_int


class DateBlockSampler(Sampler[list[int]]):
    """Batches of ``slots`` blocks of dataset positions, each block covering ``dates_per_block`` consecutive
    distinct ``dates``.

    ``dates`` [N] are the dataset's decision times (any sortable dtype); ``batch_size`` the wanted samples
    per batch, rounded to whole dates per block (at least one, at most all of them); ``seed`` fixes every
    epoch's order."""

    def __init__(self, dates: np.ndarray, batch_size: int, seed: int = 0, shuffle: bool = True,
                 slots: int = 1) -> None:
        positive_int(batch_size, "batch_size")
        self.slots = positive_int(slots, "supervision.slots")
        dates = np.asarray(dates)
        if dates.ndim != 1 or not len(dates):
            raise ValueError("DateBlockSampler needs a non-empty 1-D array of sample dates")
        self.order = np.argsort(dates, kind="stable")
        _, self.starts = np.unique(dates[self.order], return_index=True)
        self.bounds = np.append(self.starts, len(dates))
        n_dates = len(self.starts)
        if n_dates < slots:
            raise ValueError(f"{n_dates} training dates cannot fill supervision.slots={slots} blocks of whole dates")
        per_date = len(dates) / n_dates
        self.dates_per_block = int(min(n_dates // slots, max(1, round(batch_size / slots / per_date))))
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self._skip = 0

    @property
    def n_dates(self) -> int:
        return len(self.starts)

    def blocks(self) -> int:
        """Blocks per epoch over all processes: the same whatever the epoch's offset."""
        k = self.dates_per_block
        return max(self.slots, (self.n_dates - (k - 1 if self.shuffle else 0)) // k)

    def set_epoch(self, epoch: int) -> None:
        """The next pass is epoch ``epoch`` (Lightning calls this only for plain samplers: see ``ExactResume``)."""
        self.epoch = epoch

    def resume_at(self, epoch: int, skip: int) -> None:
        """The next pass is epoch ``epoch`` without its first ``skip`` batches."""
        self.epoch, self._skip = epoch, skip

    def __len__(self) -> int:
        """Batches per epoch of this process (an equal share of the blocks, ``slots`` to a batch)."""
        return max(1, self.blocks() // (_process()[1] * self.slots))

    def __iter__(self) -> Iterator[list[int]]:
        k = self.dates_per_block
        skip, self._skip = self._skip, 0
        if self.shuffle:
            rng = np.random.default_rng([self.seed, self.epoch])
            offset = int(rng.integers(min(k, self.n_dates - self.blocks() * k + 1)))
            blocks = rng.permutation(self.blocks())
        else:
            offset, blocks = 0, np.arange(self.blocks())
        rank, world = _process()
        blocks = np.resize(blocks[rank::world], len(self) * self.slots).reshape(len(self), self.slots)
        for group in blocks[skip:]:
            firsts = offset + group * k
            yield np.concatenate([self.order[self.bounds[f]:self.bounds[f + k]] for f in firsts]).tolist()


class DenseBlockSampler(DateBlockSampler):
    """Date blocks of dense windows whose supervised bars tile their symbols' bars.

    A dense window supervises its last ``bars`` bars (``dualhrq.data.dense``). Of the training windows only
    those ending on every ``bars``-th bar of their symbol (bar ``bars - 1``, ``2 * bars - 1``, ... counted from
    the symbol's first bar) are used: one symbol's supervised ranges are then disjoint and adjacent, so a batch
    of the windows ending on a run of consecutive dates holds each (symbol, bar) at most once and each symbol's
    decisions on consecutive bars, a position path the objective replays as the backtest does (costs on every
    change, the window boundaries included). Every training bar is supervised once per epoch, with a context
    fixed by its place in that tiling; bars whose tiling window is not a training window (next to a purged or
    held-out stretch) are not supervised. ``batch_size`` counts windows, as without dense supervision: a batch
    costs the same and trains up to ``bars`` times as many decisions.
    """

    def __init__(self, dates: np.ndarray, bar: np.ndarray, bars: int, batch_size: int, seed: int = 0,
                 shuffle: bool = True, slots: int = 1) -> None:
        positive_int(bars, "bars")
        self.positions = np.flatnonzero(np.asarray(bar) % bars == bars - 1)
        if not len(self.positions):
            raise ValueError(f"no training window ends on a multiple of {bars} bars into its symbol; "
                             "the fold has too little training data for dense supervision")
        super().__init__(np.asarray(dates)[self.positions], batch_size, seed=seed, shuffle=shuffle, slots=slots)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in super().__iter__():
            yield self.positions[batch].tolist()


def _process() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
