"""Latency of one trading decision (batch 1) of hrm_27m on this machine.

    python benchmarks/hrm_latency.py                  # 300 timed calls after 20 warm-up calls, fp32 and bf16
    python benchmarks/hrm_latency.py --precisions fp32

Two figures: one segment (a single HRM forward, 2x2 cycles), and the whole
ACT decision as the LightningModule makes it (segments until the Q head halts
or ``halt_max_steps``; an untrained Q head never halts early, so this is the
worst case). The design's budget for the model's share is 10 ms of a 100 ms
decision path. Each figure is taken in fp32 and under bf16 autocast (the
precision ``trainer.precision=auto`` picks on CPUs with AVX512-BF16 or AMX),
entered per call with its cast cache off as Lightning's precision plugin does:
a bf16 call pays for casting the weights, once per decision
(``precision.weight_cast_cache``), and the segment figure once per segment.
Prints one JSON line with p50/p95/p99 in milliseconds per precision and the
bf16 over fp32 ratio of the p50s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import torch

from dualhrq.config import build, compose_train
from dualhrq.features.engine import FeatureSpec, feature_names
from dualhrq.models.precision import weight_cast_cache

N_FEATURES, N_REGIME = (len(c) for c in feature_names(FeatureSpec()))
DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def percentiles(fn, calls: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    p50, p95, p99 = np.percentile(times * 1e3, [50, 95, 99])
    return {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "p99_ms": round(p99, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrm_27m")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--precisions", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = build(compose_train([f"model={args.model}"]).model, n_features=N_FEATURES, n_regime_features=N_REGIME,
                   n_symbols=2).eval()
    batch = {"x": torch.randn(1, args.seq_len, N_FEATURES), "regime": torch.randn(1, N_REGIME),
             "symbol": torch.zeros(1, dtype=torch.long)}
    result: dict[str, object] = {"model": args.model, "threads": torch.get_num_threads(), "seq_len": args.seq_len,
                                 "calls": args.calls, "budget_ms": 10.0}
    for precision in args.precisions:
        dtype = DTYPES[precision]

        def cast() -> contextlib.AbstractContextManager:
            return (contextlib.nullcontext() if dtype is None
                    else torch.autocast("cpu", dtype=dtype, cache_enabled=False))

        def segment_call() -> None:
            with cast(), weight_cast_cache():
                module.net(batch["x"], batch["regime"], batch["symbol"])

        def decision_call() -> None:
            with cast():
                module(batch)

        with torch.inference_mode():
            segment = percentiles(segment_call, args.calls, args.warmup)
            decision = percentiles(decision_call, args.calls, args.warmup)
            with cast():
                steps = float(module(batch).steps.float().mean())
        result[precision] = {"segment": segment, "decision": decision, "decision_segments": steps}
    if {"fp32", "bf16"} <= set(args.precisions):
        result["bf16_over_fp32_p50"] = {kind: round(result["bf16"][kind]["p50_ms"] / result["fp32"][kind]["p50_ms"], 3)
                                        for kind in ("segment", "decision")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
