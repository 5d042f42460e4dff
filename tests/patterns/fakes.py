"""Stand-ins for a FAISS index that is slow or broken, and a small library whose index they replace."""

import time

import numpy as np

from dualhrq.patterns.index import IndexConfig
from dualhrq.patterns.library import LibraryConfig, PatternLibrary

DAY = 86_400_000_000
SCALES, DIM = 2, 4


class SlowIndex:
    """Wraps a FAISS index; sleeps before every search while ``delay`` > 0."""

    def __init__(self, index, delay):
        self.index, self.delay = index, delay

    def search(self, q, k):
        time.sleep(self.delay)
        return self.index.search(q, k)


class BrokenIndex:
    def search(self, q, k):
        raise RuntimeError("index unavailable")


def library(n=200, seed=0):
    """An HNSW library: its FAISS index is what the tests replace (exact search bypasses the index)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.int64) * DAY
    return PatternLibrary.build(LibraryConfig(k=3, codebook=4, index=IndexConfig(kind="hnsw")),
                                rng.normal(size=(n, SCALES, DIM)).astype(np.float32), t, t + DAY,
                                rng.normal(size=n).astype(np.float32))
