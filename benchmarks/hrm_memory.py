"""Training-step memory of the HRM against recursion depth: one-step gradient vs full backprop.

    python benchmarks/hrm_memory.py                      # hrm_27m, batch 8, sequence 32
    python benchmarks/hrm_memory.py --model hrm_tiny --batch 4

For H_cycles x L_cycles in 1x1, 2x2, 2x4, 4x4 (1 to 16 L updates) and both
gradient modes, one training step (forward, backward, AdamW) is measured two
ways, each in a fresh subprocess so no allocator state is shared:

* ``saved_mb``: bytes autograd saves for the backward pass (the activation
  memory), counted exactly with ``torch.autograd.graph.saved_tensors_hooks``;
* ``peak_mb``: the process's resident memory sampled every 0.2 ms during the
  step, minus its level just before it (parameters, gradients and optimiser
  state already allocated by a warm-up step). Sampled, so a little noisy.

Prints one JSON line with the per-depth figures and the 16-vs-1 ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

DEPTHS = [(1, 1), (2, 2), (2, 4), (4, 4)]
MODES = ["one_step", "full"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def measure(model: str, h_cycles: int, l_cycles: int, gradient: str, batch: int, seq_len: int) -> dict[str, float]:
    """One configuration, in this process."""
    import torch
    from hydra.utils import instantiate

    from dualhrq.config import compose_train, model_sizes
    from dualhrq.features.engine import FeatureSpec, feature_names
    from dualhrq.models.network import DualHRQNet

    torch.set_num_threads(1)
    torch.manual_seed(0)
    n_features, n_regime = (len(c) for c in feature_names(FeatureSpec()))
    net_cfg = {**model_sizes(model)["net"], "h_cycles": h_cycles, "l_cycles": l_cycles,
               "recursion": {"gradient": gradient}}
    conditioner = instantiate(compose_train([f"model={model}", "model/conditioning=regime"]).model.conditioning.module)
    net = DualHRQNet(n_features=n_features, n_regime_features=n_regime, n_symbols=2, conditioner=conditioner,
                     **net_cfg)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x = torch.randn(batch, seq_len, n_features)
    regime, symbol = torch.randn(batch, n_regime), torch.zeros(batch, dtype=torch.long)
    target = torch.randn(batch)
    saved = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[0] += t.numel() * t.element_size()
        return t

    def step() -> None:
        optimizer.zero_grad(set_to_none=False)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = net(x, regime, symbol)
            loss = (out.signal * target).mean() + out.forecast.square().mean()
        loss.backward()
        optimizer.step()

    step()  # allocates gradients and optimiser state
    saved[0] = 0
    base = _rss_bytes()
    peak = [base]
    running = [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    step()
    running[0] = False
    sampler.join()
    return {"saved_mb": saved[0] / 2**20, "peak_mb": (peak[0] - base) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["hrm_27m", "hrm_tiny"], default="hrm_27m")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=32)
    parser.add_argument("--one", nargs=3, metavar=("H", "L", "GRADIENT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        h_cycles, l_cycles, gradient = args.one
        print(json.dumps(measure(args.model, int(h_cycles), int(l_cycles), gradient, args.batch, args.seq_len)))
        return

    rows = []
    for gradient in MODES:
        for h_cycles, l_cycles in DEPTHS:
            cmd = [sys.executable, __file__, "--model", args.model, "--batch", str(args.batch),
                   "--seq-len", str(args.seq_len), "--one", str(h_cycles), str(l_cycles), gradient]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            rows.append({"gradient": gradient, "h_cycles": h_cycles, "l_cycles": l_cycles,
                         "depth": h_cycles * l_cycles,
                         **{k: round(v, 1) for k, v in result.items()}})

    def ratio(gradient: str, key: str) -> float:
        by_depth = {r["depth"]: r[key] for r in rows if r["gradient"] == gradient}
        return round(by_depth[16] / by_depth[1], 2)

    print(json.dumps({
        "model": args.model, "batch": args.batch, "seq_len": args.seq_len,
        "saved_ratio_16_vs_1": {g: ratio(g, "saved_mb") for g in MODES},
        "peak_ratio_16_vs_1": {g: ratio(g, "peak_mb") for g in MODES},
        "rows": rows,
    }))


if __name__ == "__main__":
    main()
