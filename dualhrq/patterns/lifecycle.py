"""Pattern lifecycle: quality from how well a pattern predicted as a neighbour, expiry by age, eviction.

Quality is an exponentially weighted hit rate: each time a pattern is
retrieved for a decision whose outcome becomes known, it scores 1 if its own
outcome had the same sign, else 0 (a k-nearest-neighbour vote, Cover & Hart
1967, scored per voter). New patterns start at the uninformative 0.5. When
the library is over capacity the lowest-quality patterns go first, the
oldest among equals.
"""

from __future__ import annotations

import numpy as np

PRIOR_QUALITY = 0.5


def score_neighbours(quality: np.ndarray, uses: np.ndarray, neighbours: np.ndarray, neighbour_outcome: np.ndarray,
                     query_outcome: np.ndarray, halflife: float) -> None:
    """Update ``quality``/``uses`` in place for ``neighbours`` [Q, k] (-1 = none) of queries with known
    ``query_outcome`` [Q]; ``neighbour_outcome`` is indexed like ``quality``."""
    alpha = 1.0 - 0.5 ** (1.0 / halflife)
    valid = neighbours >= 0
    ids = neighbours[valid]
    hit = (np.sign(neighbour_outcome[ids]) == np.sign(np.broadcast_to(query_outcome[:, None], neighbours.shape)[valid]))
    # one pattern may be hit several times in a batch: apply its updates in turn (order within a batch is arbitrary)
    order = np.argsort(ids, kind="stable")
    for i, h in zip(ids[order], hit[order], strict=True):
        quality[i] += alpha * (float(h) - quality[i])
        uses[i] += 1


def expired(outcome_end: np.ndarray, now: np.int64, max_age: np.int64 | None) -> np.ndarray:
    """Mask of patterns whose outcome ended more than ``max_age`` before ``now`` (none if no limit)."""
    if max_age is None:
        return np.zeros(len(outcome_end), dtype=bool)
    return outcome_end < now - max_age


def eviction_mask(quality: np.ndarray, time: np.ndarray, capacity: int) -> np.ndarray:
    """Mask of the patterns to drop so that at most ``capacity`` remain: worst quality first, then oldest."""
    drop = np.zeros(len(quality), dtype=bool)
    excess = len(quality) - capacity
    if excess > 0:
        drop[np.lexsort((time, quality))[:excess]] = True
    return drop
