"""Pattern retrieval at run time: point-in-time search of the library behind a fail-open circuit breaker."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from dualhrq.patterns.breaker import BreakerConfig, FailOpen
from dualhrq.patterns.library import PatternLibrary


class PatternRetriever:
    """Batch queries [B, S, dim] at decision times [B] (int64 us) -> neighbour tokens [B, S*k, D] and mask,
    or None when the step fails open (timeout, error, or the breaker is open)."""

    def __init__(self, library: PatternLibrary, cfg: BreakerConfig, clock: Callable[[], float] = time.monotonic):
        self.library = library
        self.cfg = cfg
        self.fail_open = FailOpen(cfg, clock)

    def search(self, query: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tokens [B, S*k, D] (float32) and mask [B, S*k] (bool) of the point-in-time neighbours."""
        b, s, dim = query.shape
        t_rep = np.repeat(np.asarray(t, dtype=np.int64), s)
        ids, dist = self.library.search(query.reshape(b * s, dim), t_rep)
        tokens = self.library.tokens(ids, dist, t_rep)
        k = ids.shape[1]
        return tokens.reshape(b, s * k, -1), (ids >= 0).reshape(b, s * k)

    def __call__(self, query: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        return self.fail_open(self.search, query, t)

    def stats(self) -> dict[str, float]:
        return self.fail_open.stats()
