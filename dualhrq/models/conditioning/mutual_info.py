"""How much the conditioning context says about the symbol (or the calendar), in bits.

The design wants conditioning that describes the market, not the
instrument: mutual information I(context; symbol) under 0.1 bits. Two
estimates, both lower bounds of the true I by the data-processing inequality,
and the larger one is reported:

* per coordinate, the k-nearest-neighbour estimator for a continuous
  variable and a discrete one (Ross 2014, PLoS ONE 9(2): e87357), as
  scikit-learn's ``mutual_info_classif`` implements it; the maximum over
  coordinates;
* jointly, the plug-in estimate on the context quantised by k-means into
  ``n_cells`` cells (scikit-learn's ``mutual_info_score`` on the contingency
  table); its small upward bias is about (cells - 1)(classes - 1) / (2 n ln 2)
  bits (Miller 1955), negligible at the sample sizes used.

A per-symbol embedding (``puzzle_id``) is a function of the symbol, so its
estimate reaches the symbol's entropy; that is how the gate tells it apart.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.cluster import KMeans
from sklearn.feature_selection import mutual_info_classif
from sklearn.metrics import mutual_info_score

from dualhrq.errors import DataError

MI_LIMIT_BITS = 0.1  # the design's gate


def mutual_information_bits(context: np.ndarray, labels: np.ndarray, *, n_cells: int = 16, n_neighbors: int = 3,
                            max_samples: int = 4000, seed: int = 0) -> float:
    """I(context; labels) in bits: the larger of the per-coordinate kNN and the quantised joint estimates."""
    x = np.asarray(context, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or len(x) != len(y):
        raise DataError(f"mutual information: context must be [n, C] with one label per row, got {x.shape}, {y.shape}")
    if len(np.unique(y)) < 2 or x.shape[1] == 0 or len(x) < 2 * n_neighbors + 2:
        return 0.0
    rng = np.random.default_rng(seed)
    if len(x) > max_samples:
        keep = rng.choice(len(x), max_samples, replace=False)
        x, y = x[keep], y[keep]
    per_dim = mutual_info_classif(x, y, discrete_features=False, n_neighbors=n_neighbors, random_state=seed)
    distinct = len(np.unique(x, axis=0))
    cells = KMeans(min(n_cells, distinct), n_init=3, random_state=seed).fit_predict(x) if distinct > 1 else \
        np.zeros(len(x), dtype=int)
    joint = mutual_info_score(y, cells)
    return max(float(per_dim.max()), float(joint)) / math.log(2)
