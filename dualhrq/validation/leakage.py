"""How much the conditioning context says about the symbol (or the calendar), in bits.

The design wants conditioning that describes the market, not the
instrument: mutual information I(context; symbol) under 0.1 bits. The
context is quantised by k-means into ``n_cells`` cells (scikit-learn) and
I(cell; label) is the plug-in estimate on their contingency table
(scikit-learn's ``mutual_info_score``). Quantising can only lose
information (data-processing inequality), so before correction this is a
lower bound up to the plug-in's upward bias, about (cells - 1)(classes - 1) /
(2 n ln 2) bits (Miller 1955) -- large for small test blocks and many
classes. The bias is removed by the shuffle correction: the mean estimate
over ``n_shuffles`` random permutations of the labels (where the true value
is 0) is subtracted, and the result floored at 0.

A per-symbol embedding (``puzzle_id``) is a function of the symbol, so its
estimate reaches the symbol's entropy; that is how the gate tells it apart.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import mutual_info_score

from dualhrq.errors import DataError

MI_LIMIT_BITS = 0.1  # the design's gate


def mutual_information_bits(context: np.ndarray, labels: np.ndarray, *, n_cells: int = 16, n_shuffles: int = 20,
                            max_samples: int = 20_000, seed: int = 0) -> float:
    """Shuffle-corrected plug-in I(k-means cell of ``context``; ``labels``) in bits."""
    x = np.asarray(context, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise DataError(f"mutual information: context must be [n, C] with one label per row, got {x.shape}, {y.shape}")
    if not np.isfinite(x).all():
        raise DataError("mutual information: the context has non-finite values.")
    rng = np.random.default_rng(seed)
    if len(x) > max_samples:
        keep = rng.choice(len(x), max_samples, replace=False)
        x, y = x[keep], y[keep]
    distinct = len(np.unique(x, axis=0)) if x.shape[1] else 1
    if len(np.unique(y)) < 2 or distinct < 2:
        return 0.0
    cells = KMeans(min(n_cells, distinct), n_init=3, random_state=seed).fit_predict(x)
    raw = mutual_info_score(y, cells)
    null = np.mean([mutual_info_score(rng.permutation(y), cells) for _ in range(n_shuffles)])
    return max(raw - null, 0.0) / math.log(2)
