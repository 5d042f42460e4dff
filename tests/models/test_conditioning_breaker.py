"""Fail-open retrieval: the circuit breaker's three states with an injected slow or failing index, and
training and inference carrying on through them."""

import time
from functools import partial

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dualhrq.config import model_sizes
from dualhrq.models.conditioning.breaker import BreakerConfig, BreakerState, CircuitBreaker
from dualhrq.models.conditioning.config import CondConfig
from dualhrq.models.conditioning.rag import PatternRetriever
from dualhrq.models.lit_module import HRMLitModule
from dualhrq.models.network import DualHRQNet
from dualhrq.patterns.index import IndexConfig
from dualhrq.patterns.library import LibraryConfig, PatternLibrary

DAY = 86_400_000_000
SCALES, DIM = 2, 4
COND = {"patterns": {"scales": [8, 16], "dim": DIM, "library": {"k": 3, "codebook": 4}},
        "retrieval": {"timeout_ms": 50, "failure_threshold": 2, "cooldown_s": 10}}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


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


def query(b=4):
    g = torch.Generator().manual_seed(3)
    return torch.randn(b, SCALES, DIM, generator=g), torch.full((b,), 150 * DAY, dtype=torch.long)


def test_breaker_states_by_hand():
    clock = FakeClock()
    br = CircuitBreaker(BreakerConfig(failure_threshold=2, cooldown_s=10), clock)
    assert br.state is BreakerState.CLOSED
    br.failure()
    assert br.state is BreakerState.CLOSED  # one failure in a row < threshold
    br.success()
    br.failure()
    assert br.state is BreakerState.CLOSED  # the success reset the count
    br.failure()
    assert br.state is BreakerState.OPEN and not br.allow()
    clock.now = 9.9
    assert br.state is BreakerState.OPEN
    clock.now = 10.0
    assert br.state is BreakerState.HALF_OPEN and br.allow()
    br.failure()  # the half-open trial failed: open again, for a new cool-down
    assert br.state is BreakerState.OPEN and br.trips == 2
    clock.now = 20.0
    br.success()
    assert br.state is BreakerState.CLOSED


def test_slow_index_times_out_opens_the_breaker_and_recovers_when_fast_again():
    lib = library()
    clock = FakeClock()
    retriever = PatternRetriever(lib, BreakerConfig(timeout_ms=50, failure_threshold=2, cooldown_s=10), clock)
    q, t = query()
    found = retriever(q, t)  # closed, fast
    assert found.tokens.shape == (4, SCALES * 3, DIM + SCALES + 3) and found.mask.all()
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


def module(seed=0):
    torch.manual_seed(seed)
    sizes = model_sizes("hrm_tiny")
    return HRMLitModule(net=partial(DualHRQNet, **sizes["net"]), conditioning="regime_rag",
                        optimizer=partial(torch.optim.AdamW, lr=1e-2),
                        loss={"forecast_weight": 1.0, "utility_weight": 0.5, "cost_bps": 1.0},
                        budget=sizes["budget"], n_features=5, n_regime_features=3, n_symbols=2,
                        supervision={"segments": 2}, cond=COND)


def loader(n=8, b=4):
    g = torch.Generator().manual_seed(5)
    rows = [{"x": torch.randn(12, 5, generator=g), "regime": torch.randn(3, generator=g),
             "symbol": torch.tensor(i % 2), "target_z": torch.randn((), generator=g),
             "regime_label": torch.tensor(i % 4), "query": torch.randn(SCALES, DIM, generator=g),
             "t": torch.tensor((100 + i) * DAY)} for i in range(n)]
    return DataLoader(rows, batch_size=b)


@pytest.mark.parametrize("index", ["slow", "broken"])
def test_training_and_inference_carry_on_through_failed_retrieval(tmp_path, monkeypatch, index):
    monkeypatch.chdir(tmp_path)
    lib = library()
    lib.index = SlowIndex(lib.index, delay=0.3) if index == "slow" else BrokenIndex()
    mod = module()
    mod.attach_retriever(PatternRetriever(lib, CondConfig.from_config(COND).retrieval))
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, deterministic=True)
    trainer.fit(mod, train_dataloaders=loader())
    assert trainer.global_step == 2 * 2  # 2 batches x 2 segments: every step ran
    batch = next(iter(loader()))
    out = mod(batch)
    assert torch.isfinite(out.signal).all()
    stats = mod.retriever.stats()
    assert stats["ok"] == 0 and stats["calls"] == 3
    assert stats["skipped"] == 1  # threshold 2: the third call found the breaker open
    # failed open means exactly regime-only conditioning
    mod.attach_retriever(None)
    torch.testing.assert_close(mod(batch).signal, out.signal)


def test_retrieved_patterns_reach_the_film_context():
    mod = module()
    mod.attach_retriever(PatternRetriever(library(), CondConfig.from_config(COND).retrieval))
    batch = next(iter(loader()))
    patterns = mod.patterns(batch)
    assert patterns is not None and patterns.mask.any()
    cond = mod.net.conditioning.encode(batch["regime"], batch["symbol"], patterns)
    assert (cond.context[:, -1] == 1).all()  # the retrieval-available flag
    assert cond.context[:, 4:-1].abs().sum() > 0  # a non-zero pooled pattern context
