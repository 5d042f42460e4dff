"""Fail-open pattern retrieval: a slow or failing index times out or errors, the breaker opens, and it recovers."""


import numpy as np
import pytest
import torch

from dualhrq.patterns.breaker import BreakerConfig, BreakerState
from dualhrq.patterns.retrieval import PatternRetriever

from .fakes import DAY, DIM, SCALES, BrokenIndex, SlowIndex, library


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def query(b=4):
    """Queries [b, scales, dim] and decision times, as numpy arrays (what the LitModule hands the retriever)."""
    g = torch.Generator().manual_seed(3)
    return torch.randn(b, SCALES, DIM, generator=g).numpy(), np.full(b, 150 * DAY, dtype=np.int64)


def test_slow_index_times_out_opens_the_breaker_and_recovers_when_fast_again():
    lib = library()
    clock = FakeClock()
    retriever = PatternRetriever(lib, BreakerConfig(timeout_ms=50, failure_threshold=2, cooldown_s=10), clock)
    q, t = query()
    tokens, mask = retriever(q, t)  # closed, fast
    assert tokens.shape == (4, SCALES * 3, DIM + SCALES + 3) and mask.all()
    slow = SlowIndex(lib.index, delay=0.3)
    lib.index = slow
    assert retriever(q, t) is None and retriever(q, t) is None  # two timeouts: open
    assert retriever.fail_open.breaker.state is BreakerState.OPEN
    assert retriever(q, t) is None  # open: skipped without calling the index
    stats = retriever.stats()
    assert (stats["ok"], stats["timeouts"], stats["skipped"], stats["calls"]) == (1, 2, 1, 4)
    assert stats["fail_open_rate"] == pytest.approx(0.75)
    clock.now = 10.0  # cool-down over: half-open, and the index is fast again
    slow.delay = 0.0
    assert retriever.fail_open.breaker.state is BreakerState.HALF_OPEN
    assert retriever(q, t) is not None
    assert retriever.fail_open.breaker.state is BreakerState.CLOSED
    # each timed-out call waited about the time limit, not the index's 0.3 s
    assert 45 <= sorted(retriever.fail_open.latency_ms)[-1] < 250


def test_failing_index_counts_errors_and_fails_open():
    lib = library()
    lib.index = BrokenIndex()
    retriever = PatternRetriever(lib, BreakerConfig(failure_threshold=3), FakeClock())
    q, t = query()
    assert [retriever(q, t) for _ in range(4)] == [None] * 4
    stats = retriever.stats()
    assert (stats["errors"], stats["skipped"], stats["breaker_trips"]) == (3, 1, 1)
