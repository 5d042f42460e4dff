"""Learning per wall-clock second: dense supervision against the last bar alone, same seed, fold and model.

Both runs train ``--model`` (default ``hrm_tiny``) on fold 0 of the main job's data and folds with the same
seed, batches of the same number of windows, a constant learning rate (no schedule, so stopping on a clock
cuts neither short) and ``--seconds`` of training each; every ``--every`` batches the whole validation tail is
scored. Validation always scores the decision bar (the last bar of each window), so both curves measure the
same thing: the loss of the decisions the model trades. The clock counts training only (validation excluded).
The densely trained model then predicts the fold's test block at several strides
(``model.prediction.stride``), each compared with one window per decision: signal correlation and the
out-of-sample Sharpe ratio of the close-to-close backtest (1 bp). Writes ``dense_supervision.json`` (curves and
agreement) and ``dense_supervision.png`` next to this file.

    OMP_NUM_THREADS=1 python experiments/dense_supervision.py
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import lightning as L
import matplotlib
import numpy as np
import polars as pl

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from omegaconf import open_dict  # noqa: E402

from dualhrq.config import build, compose_train, located  # noqa: E402
from dualhrq.market.backtest import SignalBacktest  # noqa: E402
from dualhrq.training.fold import fit_fold  # noqa: E402
from dualhrq.validation.folds import make_folds  # noqa: E402

HERE = Path(__file__).resolve().parent
STRIDES = (2, 4, 8, 16, 24)


class LearningCurve(L.Callback):
    """Records (training seconds, optimiser steps, val/loss) after each validation; stops past ``seconds``."""

    records: list[dict[str, float]] = []

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = self.val_start = 0.0
        self.val_time = 0.0

    def training_seconds(self) -> float:
        return time.perf_counter() - self.start - self.val_time

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        LearningCurve.records = []
        self.start, self.val_time = time.perf_counter(), 0.0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.val_time += time.perf_counter() - self.val_start
        if trainer.sanity_checking or not self.start:
            return
        metrics = trainer.callback_metrics
        LearningCurve.records.append({"seconds": self.training_seconds(), "steps": trainer.global_step,
                                      "val_loss": float(metrics["val/loss"]), "val_nll": float(metrics["val/nll"])})

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        if self.training_seconds() > self.seconds:
            trainer.should_stop = True


def run(dense: bool, args: argparse.Namespace, root: Path) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """The learning curve of one run and, for the dense one, the agreement of strided prediction."""
    cfg = compose_train([f"model={args.model}", f"model.supervision.dense={str(dense).lower()}",
                         "model.scheduler=null", "trainer.max_epochs=-1", "trainer.max_steps=100000",
                         f"trainer.val_check_interval={args.every}",
                         "trainer.check_val_every_n_epoch=null", "trainer.num_sanity_val_steps=0",
                         "+trainer.enable_progress_bar=false", "~callbacks.progress_bar", f"seed={args.seed}",
                         f"logger.mlflow.tracking_uri=sqlite:///{root}/mlruns.db",
                         f"logger.mlflow.artifact_location={root}/mlartifacts"])
    with open_dict(cfg):
        cfg.callbacks.curve = {"_target_": f"{__name__}.LearningCurve", "seconds": args.seconds}
        cfg.paths.output_dir = str(root)
    dm = build(cfg.data)
    with located(cfg.data):
        s = dm.prepare()
    fold = make_folds(build(cfg.validation.splitter), s.t, s.t1, cfg.validation.val_fraction, s.t0)[0]
    pipeline = fit_fold(cfg, dm, fold, None, root / ("dense" if dense else "last_bar")).pipeline
    curve = list(LearningCurve.records)
    if not dense:
        return curve, []
    test = fold.test

    def sharpe(signal: np.ndarray) -> float:
        return SignalBacktest(cost_bps=1.0).run(pl.DataFrame({
            "ts": s.t[test], "symbol": np.asarray(s.symbols)[s.symbol_id[test]], "signal": signal,
            "next_return": s.next_return[test]})).sharpe

    start = time.perf_counter()
    one = pipeline.predict(s, test, stride=1)
    seconds = time.perf_counter() - start
    agreement = [{"stride": 1, "correlation": 1.0, "sharpe": sharpe(one.signal), "seconds": seconds}]
    for stride in STRIDES:
        start = time.perf_counter()
        out = pipeline.predict(s, test, stride=stride)
        agreement.append({"stride": stride, "correlation": float(np.corrcoef(one.signal, out.signal)[0, 1]),
                          "sharpe": sharpe(out.signal), "seconds": time.perf_counter() - start})
    return curve, agreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrm_tiny")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--every", type=int, default=5, help="validate every this many batches")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: run(dense, args, Path(tmp)) for name, dense in (("last_bar", False), ("dense", True))}
    curves = {name: curve for name, (curve, _) in runs.items()}
    result = {"model": args.model, "seconds": args.seconds, "every": args.every, "seed": args.seed,
              "threads": torch.get_num_threads(), "curves": curves, "stride_agreement": runs["dense"][1]}
    (HERE / "dense_supervision.json").write_text(json.dumps(result, indent=1))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, label in (("last_bar", "last bar only"), ("dense", "dense (every bar from min_context)")):
        points = curves[name]
        ax.plot([p["seconds"] for p in points], [p["val_loss"] for p in points], marker="o", ms=3, label=label)
    ax.set_xlabel("training wall-clock seconds (validation excluded)")
    ax.set_ylabel("validation loss (decision bar)")
    ax.set_title(f"{args.model}, fold 0, seed {args.seed}: validation loss against training time")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(HERE / "dense_supervision.png", dpi=120)
    for name, points in curves.items():
        best = min(points, key=lambda p: p["val_loss"])
        print(json.dumps({"run": name, "validations": len(points), "steps": points[-1]["steps"],
                          "final_val_loss": round(points[-1]["val_loss"], 4),
                          "best_val_loss": round(best["val_loss"], 4), "best_at_seconds": round(best["seconds"], 1)}))
    for row in runs["dense"][1]:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))


if __name__ == "__main__":
    main()
