"""Training and prediction throughput of hrm_27m and transformer_27m, in fp32 and bf16 autocast, in one run.

    python benchmarks/hrm_throughput.py                          # both 27M models, batch 32, sequence 32
    python benchmarks/hrm_throughput.py --models hrm_tiny --steps 20 --precisions fp32

A training step is one deep-supervision segment: forward, loss, backward and
AdamW step, with the one-step gradient for the HRM. With ACT on, the HRM's
segment also runs the no-grad next-segment forward that bootstraps the Q
target, reported separately as ``train_act``. Prediction is a no-grad
forward of one segment. FLOPs are counted by ``torch.utils.flop_counter`` on
one step, so GFLOP/s is work done over time taken; ``gemm_fraction`` divides it
by the square GEMM's rate (n=2048) in the same precision, measured just before
each timing: the most this machine's matrix kernels deliver. Prints one JSON line; the ratios
are bf16 over fp32 (samples/s) and the first model over the second (samples/s,
FLOPs per sample and GFLOP/s, per precision), measured in the same process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dualhrq.config import build, compose_train
from dualhrq.features.engine import FeatureSpec, feature_names

# the bundled daily data's input sizes: default features, two symbols
N_FEATURES, N_REGIME = (len(c) for c in feature_names(FeatureSpec()))
N_SYMBOLS = 2
DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    dtype = DTYPES[precision]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def timed(fn: Callable[[], None], n: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(n):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def flops(fn: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def gemm_limit(precision: str, device: torch.device, n: int = 2048, reps: int = 10) -> float:
    """GFLOP/s of an n x n matrix product in ``precision``: the machine's best case."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    with autocast(precision, device):
        seconds = timed(lambda: a @ b, reps, 2, device)
    return 2 * n**3 * reps / seconds / 1e9


def measure(name: str, precision: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    module = build(compose_train([f"model={name}"]).model, n_features=N_FEATURES, n_regime_features=N_REGIME,
                   n_symbols=N_SYMBOLS)
    net = module.net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.seq_len, N_FEATURES, device=device)
    regime = torch.randn(args.batch, N_REGIME, device=device)
    symbol = torch.randint(0, N_SYMBOLS, (args.batch,), device=device)
    target = torch.randn(args.batch, device=device)

    def step(q_target: bool = False) -> None:
        with autocast(precision, device):
            out = net(x, regime, symbol)
            if q_target:
                with torch.no_grad():
                    net(x, regime, symbol, out.carry)
            mean, log_var = out.forecast.unbind(-1)
            loss = -(out.signal * target).mean() + F.gaussian_nll_loss(mean, target, log_var.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def predict() -> None:
        with autocast(precision, device):
            net(x, regime, symbol)

    def rates(fn: Callable[[], None]) -> dict[str, float]:
        work = flops(fn)
        limit = gemm_limit(precision, device)  # next to the timing: on a shared machine the load drifts
        seconds = timed(fn, args.steps, args.warmup, device)
        gflops = work * args.steps / seconds / 1e9
        return {"samples_per_s": round(args.steps * args.batch / seconds, 2),
                "gflop_per_sample": round(work / args.batch / 1e9, 3), "gflop_per_s": round(gflops, 1),
                "gemm_gflop_per_s": round(limit, 1), "gemm_fraction": round(gflops / limit, 3)}

    result: dict[str, object] = {"params": sum(p.numel() for p in net.parameters()), "train": rates(step)}
    if module.act.enabled:
        result["train_act"] = rates(lambda: step(True))
    net.eval()
    with torch.inference_mode():
        result["predict"] = rates(predict)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["hrm_27m", "transformer_27m"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {p: {name: measure(name, p, args, device) for name in args.models} for p in args.precisions}
    line: dict[str, object] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "batch": args.batch, "seq_len": args.seq_len,
        "results": results,
    }
    if {"fp32", "bf16"} <= set(args.precisions):
        line["bf16_over_fp32"] = {name: {kind: round(results["bf16"][name][kind]["samples_per_s"]
                                                     / results["fp32"][name][kind]["samples_per_s"], 3)
                                         for kind in ("train", "predict")} for name in args.models}
    if len(args.models) == 2:
        first, second = args.models
        line["first_over_second_train"] = {
            p: {key: round(results[p][first]["train"][key] / results[p][second]["train"][key], 3)
                for key in ("samples_per_s", "gflop_per_sample", "gflop_per_s")} for p in args.precisions}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
