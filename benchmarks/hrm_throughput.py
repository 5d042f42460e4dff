"""Training and prediction throughput of DualHRQNet on random windows (CPU or CUDA).

    python benchmarks/hrm_throughput.py --model hrm_27m --steps 5   # after pip install -e .

Training is forward + backward + AdamW step; prediction is a no-grad forward.
Prints one JSON line. Uses CUDA when available unless --device is given.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from dualhrq.config import model_sizes
from dualhrq.features.engine import FeatureSpec, feature_names
from dualhrq.models.network import DualHRQNet
from dualhrq.models.params import count_parameters

# the bundled daily data's input sizes: default features, two symbols
N_FEATURES, N_REGIME = (len(c) for c in feature_names(FeatureSpec()))
N_SYMBOLS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["hrm_27m", "hrm_tiny"], default="hrm_27m")
    parser.add_argument("--conditioning", default="regime")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    net = DualHRQNet(n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS,
                     conditioning=args.conditioning, **model_sizes(args.model)["net"]).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, args.seq_len, N_FEATURES, device=device)
    regime = torch.randn(args.batch, N_REGIME, device=device)
    symbol = torch.randint(0, N_SYMBOLS, (args.batch,), device=device)
    target = torch.randn(args.batch, device=device)

    def step() -> None:
        out = net(x, regime, symbol)
        mean, log_var = out.forecast.unbind(-1)
        loss = -(out.signal * target).mean() + F.gaussian_nll_loss(mean, target, log_var.exp())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    seconds = time.perf_counter() - start

    samples = args.steps * args.batch
    net.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for _ in range(args.steps):
            net(x, regime, symbol)
    sync()
    predict_seconds = time.perf_counter() - start
    print(json.dumps({
        "model": args.model,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "samples_per_s": round(samples / seconds, 2),
        "s_per_sample": round(seconds / samples, 5),
        "predict_samples_per_s": round(samples / predict_seconds, 2),
        "predict_s_per_sample": round(predict_seconds / samples, 5),
        "params": count_parameters(net)["total"],
    }))


if __name__ == "__main__":
    main()
