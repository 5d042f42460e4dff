"""A circuit breaker (Nygard 2007, "Release It!") around pattern retrieval, failing open to regime-only.

Each retrieval runs with a time limit. A timeout or an error fails that step
open: the network gets no patterns and conditions on the regime alone. After
``failure_threshold`` failures in a row the breaker opens and retrieval is
skipped; after ``cooldown_s`` it half-opens and lets one trial through, which
closes it on success and re-opens it on failure. Training and inference
carry on in every state.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from dualhrq.config import NonNegative, Positive, PositiveInt, check_fields


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerConfig:
    """``model.conditioning.retrieval``: per-call time limit and the breaker's thresholds."""

    timeout_ms: Positive = 60.0
    failure_threshold: PositiveInt = 3
    cooldown_s: NonNegative = 30.0

    def __post_init__(self) -> None:
        check_fields(self)


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` consecutive failures -> half-open after ``cooldown_s``."""

    def __init__(self, cfg: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None
        self.trips = 0

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at >= self.cfg.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a call may go through now (closed, or the half-open trial)."""
        return self.state is not BreakerState.OPEN

    def success(self) -> None:
        self.failures, self.opened_at = 0, None

    def failure(self) -> None:
        half_open = self.state is BreakerState.HALF_OPEN
        self.failures += 1
        if half_open or self.failures >= self.cfg.failure_threshold:
            self.opened_at = self.clock()
            self.trips += 1


class FailOpen:
    """Run ``fn`` under the breaker with a time limit; ``None`` means "failed open" (skipped, timed out or
    raised). Counts every outcome and records each attempted call's latency."""

    def __init__(self, cfg: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.breaker = CircuitBreaker(cfg, clock)
        self.counts = {"calls": 0, "ok": 0, "timeouts": 0, "errors": 0, "skipped": 0}
        self.latency_ms: list[float] = []
        self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any | None:
        self.counts["calls"] += 1
        if not self.breaker.allow():
            self.counts["skipped"] += 1
            return None
        start = time.perf_counter()
        future = self._pool.submit(fn, *args)
        try:
            result = future.result(timeout=self.cfg.timeout_ms / 1000.0)
        except cf.TimeoutError:
            self.counts["timeouts"] += 1
            # leave the stuck call behind: later calls get a fresh worker instead of queueing behind it
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrieval")
            result = None
        except Exception:  # noqa: BLE001 - any retrieval error fails open; the count records it
            self.counts["errors"] += 1
            result = None
        self.latency_ms.append((time.perf_counter() - start) * 1000.0)
        if result is None:
            self.breaker.failure()
        else:
            self.counts["ok"] += 1
            self.breaker.success()
        return result

    def stats(self) -> dict[str, float]:
        """Counts, the fail-open rate (share of calls without patterns) and latency percentiles in ms."""
        calls = max(self.counts["calls"], 1)
        lat = np.asarray(self.latency_ms) if self.latency_ms else np.zeros(1)
        return {**{k: float(v) for k, v in self.counts.items()},
                "fail_open_rate": (self.counts["calls"] - self.counts["ok"]) / calls,
                "breaker_trips": float(self.breaker.trips),
                "latency_p50_ms": float(np.percentile(lat, 50)), "latency_p99_ms": float(np.percentile(lat, 99))}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
