"""The real training step's speed in each ``trainer.precision``, interleaved in one process.

    python benchmarks/train_step_precision.py                    # hrm_27m, regime_film's settings, fp32 vs bf16-mixed
    python benchmarks/train_step_precision.py --reps 3 --batches 2 --threads 1
    python benchmarks/train_step_precision.py --profile out/     # also write a torch.profiler table per precision

Unlike ``hrm_throughput.py`` (the network alone under ``torch.autocast``), this
times what the job runs: ``HRMLitModule`` built from the composed
``+experiment=regime_film`` config, trained by a Lightning ``Trainer`` with the
precision plugin, manual optimisation and every deep-supervision segment
(forward, the ACT target's no-grad forward, backward, clipping, AdamW step).
Batches are synthetic with the bundled daily data's shapes (batch 32 of runs of
dates over both symbols, window 32, its feature counts). Each repetition fits a
fresh model in every precision in turn, so a busy machine slows all of them
alike; per precision the figure is the median seconds per batch over the
repetitions' timed batches (the first ``--warmup`` batches of every fit are
left out). FLOPs per batch are counted once by ``FlopCounterMode``; GFLOP/s
over the square GEMM's rate in the same arithmetic (``hrm_throughput.gemm_limit``,
taken before every fit, median) gives ``gemm_fraction``. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from dualhrq.config import build, compose_train

sys.path.insert(0, str(Path(__file__).parent))
from hrm_throughput import gemm_limit  # noqa: E402

GEMM_DTYPE = {"32-true": "fp32", "bf16-mixed": "bf16"}
DAY_US = 86_400_000_000


class BatchTimer(L.Callback):
    """Seconds of every training batch (all its segments and optimiser steps)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, *args: object) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, *args: object) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def synthetic_batches(n: int, batch: int, seq_len: int, n_features: int, n_regime: int, n_symbols: int,
                      n_regimes: int) -> list[dict[str, torch.Tensor]]:
    """Batches shaped as the daily datamodule's: consecutive dates, every symbol on each."""
    g = torch.Generator().manual_seed(0)
    dates_per_batch = batch // n_symbols
    return [{"x": torch.randn(batch, seq_len, n_features, generator=g),
             "regime": torch.randn(batch, n_regime, generator=g),
             "symbol": torch.arange(batch) % n_symbols,
             "target_z": torch.randn(batch, generator=g),
             "next_return": 0.01 * torch.randn(batch, generator=g),
             "date": (torch.arange(batch) // n_symbols + i * dates_per_batch) * DAY_US,
             "regime_label": torch.randint(0, n_regimes, (batch,), generator=g)} for i in range(n)]


def fit(cfg, sizes: dict[str, int], data: list[dict[str, torch.Tensor]], precision: str,
        profile: Path | None = None) -> list[float]:
    """Seconds per batch of one fit of a fresh model over ``data``."""
    torch.manual_seed(0)
    model = build(cfg.model, **sizes, target_scale=1.0)
    timer = BatchTimer()
    trainer = L.Trainer(accelerator="cpu", devices=1, precision=precision, max_epochs=1, logger=False,
                        max_steps=len(data) * model.segments, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[timer])
    loader = DataLoader(data, batch_size=None)
    if profile is None:
        trainer.fit(model, train_dataloaders=loader)
        return timer.seconds
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as profiler

    with profiler(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        trainer.fit(model, train_dataloaders=loader)
    profile.mkdir(parents=True, exist_ok=True)
    averages = prof.key_averages(group_by_input_shape=True)
    (profile / f"{precision}.txt").write_text(averages.table(sort_by="self_cpu_time_total", row_limit=60,
                                                             max_name_column_width=60, max_shapes_column_width=90))
    return timer.seconds


def flops_per_batch(cfg, sizes: dict[str, int], data: list[dict[str, torch.Tensor]], precision: str) -> int:
    with FlopCounterMode(display=False) as counter:
        fit(cfg, sizes, data[:1], precision)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"], choices=list(GEMM_DTYPE))
    parser.add_argument("--reps", type=int, default=3, help="fits per precision, interleaved")
    parser.add_argument("--batches", type=int, default=2, help="timed batches per fit")
    parser.add_argument("--warmup", type=int, default=1, help="untimed batches first in every fit")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", type=Path, default=None, help="folder for one profiled fit per precision")
    parser.add_argument("overrides", nargs="*", default=["+experiment=regime_film"],
                        help="Hydra overrides of the composed job (default: +experiment=regime_film)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    cfg = compose_train(args.overrides)
    dm = build(cfg.data)
    sizes = {"n_features": dm.n_features, "n_regime_features": dm.n_regime_features,
             "n_symbols": len(cfg.data.source.symbols)}
    n_regimes = int(cfg.model.conditioning.get("regimes") or 1)
    batch, seq_len = int(cfg.data.batch_size), int(cfg.data.seq_len)
    data = synthetic_batches(args.warmup + args.batches, batch, seq_len, sizes["n_features"],
                             sizes["n_regime_features"], sizes["n_symbols"], n_regimes)

    seconds: dict[str, list[float]] = {p: [] for p in args.precisions}
    limits: dict[str, list[float]] = {p: [] for p in args.precisions}
    for _ in range(args.reps):
        for precision in args.precisions:
            limits[precision].append(gemm_limit(GEMM_DTYPE[precision], torch.device("cpu")))
            seconds[precision] += fit(cfg, sizes, data, precision)[args.warmup:]
    work = flops_per_batch(cfg, sizes, data, args.precisions[-1])
    results: dict[str, dict[str, float]] = {}
    for precision, times in seconds.items():
        median, limit = statistics.median(times), statistics.median(limits[precision])
        results[precision] = {"s_per_batch": round(median, 2), "s_min": round(min(times), 2),
                              "s_max": round(max(times), 2), "samples_per_s": round(batch / median, 2),
                              "gflop_per_s": round(work / median / 1e9, 1), "gemm_gflop_per_s": round(limit, 1),
                              "gemm_fraction": round(work / median / 1e9 / limit, 3)}
    if args.profile is not None:
        for precision in args.precisions:
            fit(cfg, sizes, data, precision, profile=args.profile)
    line: dict[str, object] = {"overrides": args.overrides, "threads": torch.get_num_threads(), "batch": batch,
                               "seq_len": seq_len, "reps": args.reps, "timed_batches_per_fit": args.batches,
                               "gflop_per_batch": round(work / 1e9, 1), "results": results}
    if {"32-true", "bf16-mixed"} <= set(args.precisions):
        line["bf16_over_fp32_samples_per_s"] = round(results["32-true"]["s_per_batch"]
                                                     / results["bf16-mixed"]["s_per_batch"], 3)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
