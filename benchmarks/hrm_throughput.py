"""Training and prediction throughput of hrm_27m against the transformer_27m baseline, in one run.

    python benchmarks/hrm_throughput.py                          # both 27M models, batch 32, sequence 32
    python benchmarks/hrm_throughput.py --models hrm_tiny --steps 20

A training step is one deep-supervision segment: forward, loss, backward and
AdamW step, with the one-step gradient for the HRM. With ACT on, the HRM's
segment also runs the no-grad next-segment forward that bootstraps the Q
target, reported separately as ``act_samples_per_s``. Prediction is a no-grad
forward of one segment. Prints one JSON line; ``train_ratio`` is the first
model's training samples/s over the second's, measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from dualhrq.config import build, compose_train
from dualhrq.features.engine import FeatureSpec, feature_names

# the bundled daily data's input sizes: default features, two symbols
N_FEATURES, N_REGIME = (len(c) for c in feature_names(FeatureSpec()))
N_SYMBOLS = 2


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    module = build(compose_train([f"model={name}"]).model, n_features=N_FEATURES, n_regime_features=N_REGIME,
                   n_symbols=N_SYMBOLS)
    net = module.net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.seq_len, N_FEATURES, device=device)
    regime = torch.randn(args.batch, N_REGIME, device=device)
    symbol = torch.randint(0, N_SYMBOLS, (args.batch,), device=device)
    target = torch.randn(args.batch, device=device)

    def step(q_target: bool) -> None:
        out = net(x, regime, symbol)
        if q_target:
            with torch.no_grad():
                net(x, regime, symbol, out.carry)
        mean, log_var = out.forecast.unbind(-1)
        loss = -(out.signal * target).mean() + F.gaussian_nll_loss(mean, target, log_var.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def timed(fn, n: int) -> float:
        for _ in range(args.warmup):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    samples = args.steps * args.batch
    result = {"params": sum(p.numel() for p in net.parameters())}
    result["samples_per_s"] = round(samples / timed(lambda: step(False), args.steps), 2)
    if module.act.enabled:
        result["act_samples_per_s"] = round(samples / timed(lambda: step(True), args.steps), 2)
    net.eval()
    with torch.inference_mode():
        result["predict_samples_per_s"] = round(samples / timed(lambda: net(x, regime, symbol), args.steps), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["hrm_27m", "transformer_27m"])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {name: measure(name, args, device) for name in args.models}
    line = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "batch": args.batch, "seq_len": args.seq_len, "models": results,
    }
    if len(args.models) == 2:
        a, b = (results[m]["samples_per_s"] for m in args.models)
        line["train_ratio"] = round(a / b, 3)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
