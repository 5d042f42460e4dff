"""Windows that decide at many bars: the bars a dense window supervises, their label span, and strided prediction.

A window of ``seq_len`` bars ending at row ``e`` of a symbol can decide at every bar ``e - k`` (``k`` bars
before its last) when the model is causal; dense supervision trains its last ``bars`` bars, and strided
prediction reads its last ``stride`` bars. A supervised bar is trained against the label of the sample that
ends at that bar (its own target and label end ``t1``), so a bar that is no sample (too little usable history
for a full window of its own, or a label past the data) is left out.

Purging needs nothing new for dense windows. A window's supervised labels start at its first supervised bar and
end at its last bar's label end: inside the window's [``t0``, ``t1``], since ``t0`` is at or before its first
bar and the last bar's label ends last. CPCV purges and embargoes every training window on [``t0``, ``t1``]
(``validation.cpcv.purge_and_embargo``), so it clears every supervised bar's label as it clears the decision
bar's (``tests/data/test_dense.py`` checks it on purged folds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualhrq.data.samples import SampleSet


def row_sample(samples: SampleSet) -> np.ndarray:
    """The sample ending at each feature row [n_rows], -1 where none does."""
    out = np.full(len(samples.row_symbol), -1, dtype=np.int64)
    out[samples.end_row] = np.arange(len(samples))
    return out


def bar_in_symbol(samples: SampleSet, index: np.ndarray) -> np.ndarray:
    """Position of each sample's decision bar among its symbol's rows (0 = the symbol's first bar)."""
    end = samples.end_row[index]
    return end - np.searchsorted(samples.row_symbol, samples.row_symbol[end], side="left")


@dataclass(frozen=True)
class StridedPlan:
    """Windows to run (sample indices) and, per requested sample, which of them decides it (``slot``) and how
    many bars before that window's last bar it sits (``back``, 0 .. stride - 1)."""

    windows: np.ndarray
    slot: np.ndarray
    back: np.ndarray


def strided_windows(samples: SampleSet, index: np.ndarray, stride: int) -> StridedPlan:
    """One window per ``stride`` consecutive requested decisions of a symbol, each decision read from the
    nearest requested window ending at or after it.

    Runs of requested samples on consecutive bars of a symbol are cut from their last bar back into pieces of
    ``stride`` bars; each piece is decided by the window ending at its last bar, so every requested sample gets
    exactly one decision, from bars up to its own (the network is causal) and with at least
    ``seq_len - stride`` bars of context."""
    index = np.asarray(index, dtype=np.int64)
    if not len(index):
        return StridedPlan(windows=index, slot=index, back=index)
    order = np.argsort(samples.end_row[index], kind="stable")
    rows = samples.end_row[index][order]
    symbol = samples.symbol_id[index][order]
    starts = np.r_[True, (np.diff(rows) != 1) | (symbol[1:] != symbol[:-1])]
    last = np.r_[np.flatnonzero(starts)[1:] - 1, len(rows) - 1]
    run_last = rows[last][np.cumsum(starts) - 1]
    back = (run_last - rows) % stride
    picked, slot = np.unique(np.arange(len(rows)) + back, return_inverse=True)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return StridedPlan(windows=index[order][picked], slot=slot[inverse], back=back[inverse])
