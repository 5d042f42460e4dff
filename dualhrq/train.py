"""``python -m dualhrq.train``: compose, fit every CV fold, evaluate out of sample, log.

The job, in order: check the config (before any data is read), build the
samples once, cut the CPCV folds, train one model per fold (resuming a fold
from its ``last.ckpt`` when the output directory already has one), replay
each fold's test signals, assemble the CPCV paths, compute the statistics,
log everything to one MLflow run and print the summary. The return value is
the configured objective, for Hydra's sweepers.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import hydra
import lightning as L
import numpy as np
import polars as pl
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from dualhrq.config import build, located
from dualhrq.data.datamodule import MarketDataModule
from dualhrq.errors import ConfigError, DualHRQError, positive_int
from dualhrq.models.conditioning import check_conditioning
from dualhrq.models.conditioning.config import CondConfig
from dualhrq.models.conditioning.fold_fit import FoldConditioning, fit_fold_conditioning
from dualhrq.models.conditioning.rag import PatternRetriever
from dualhrq.models.conditioning.report import conditioning_report
from dualhrq.models.lit_module import HRMLitModule, check_model_config
from dualhrq.models.network import NetOutput
from dualhrq.models.params import count_parameters, format_budget_table
from dualhrq.tracking.lineage import frame_sha256, git_commit
from dualhrq.tracking.mlflow_run import RunTracker, flatten_config, override_tags
from dualhrq.tracking.run_end import check_evaluation_config, finish_training_run
from dualhrq.validation.folds import FoldIndex, make_folds
from dualhrq.validation.gates import FAIL, GatesFailed
from dualhrq.validation.oos import OBJECTIVES

log = logging.getLogger("dualhrq.train")

# Deep supervision steps the optimiser itself; the checkpoint it resumes from is meant to hold the
# state after the step, which is what Lightning saves and warns about.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")


def check_config(cfg: DictConfig) -> None:
    """Refuse impossible or unsupported values before any data is loaded."""
    check_conditioning(cfg.model.conditioning)
    check_model_config(cfg.model)
    build(cfg.validation.splitter)
    build(cfg.backtest)
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(f"objective={cfg.objective!r} is not a run metric; choose one of {sorted(OBJECTIVES)}")
    for key in ("seq_len", "horizon", "stride", "batch_size"):
        positive_int(cfg.data[key], f"data.{key}")


def predict(model: HRMLitModule, loader: torch.utils.data.DataLoader) -> dict[str, np.ndarray]:
    """Signal and forecast for every test window, in loader order, plus the fold's loss on them
    and the mean number of ACT segments a decision used."""
    model.eval()
    outs, targets = [], []
    with torch.inference_mode():
        for batch in loader:
            batch = {k: v.to(model.device) for k, v in batch.items()}
            outs.append(model(batch))
            targets.append(batch["target_z"])
    out = NetOutput(signal=torch.cat([o.signal for o in outs]), forecast=torch.cat([o.forecast for o in outs]))
    terms = model.loss_terms(out, torch.cat(targets))
    return {"signal": out.signal.float().cpu().numpy(), "forecast_z": out.forecast[:, 0].float().cpu().numpy(),
            "loss": float(terms["loss"]), "nll": float(terms["nll"]),
            "steps": float(torch.cat([o.steps for o in outs]).float().mean())}


# conditioning metrics logged per fold and, averaged over folds, per run (read by the statistics gates)
COND_PREFIXES = ("regime/", "conditioning/", "retrieval/", "patterns/")
SIM_PREFIX = "sim/"  # the strict simulator's counts (fills, rejections, violations): summed over folds


def fit_fold(cfg: DictConfig, dm: MarketDataModule, fold: FoldIndex, run_id: str | None,
             fold_dir: Path) -> tuple[HRMLitModule, L.Trainer, FoldConditioning]:
    """Train one fold's model, resuming from its ``last.ckpt`` when one exists. Regime labels and the
    pattern library are fitted on the fold's training part first."""
    cond = fit_fold_conditioning(cfg.model.conditioning, CondConfig.from_config(cfg.model.get("cond")),
                                 dm.prepare(), fold, *dm.rows)
    dm.set_fold(fold, extras=cond.extras)
    L.seed_everything(cfg.seed, workers=True)
    model: HRMLitModule = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                                n_symbols=dm.n_symbols, target_scale=dm.target_scale)
    if cond.library is not None:
        model.attach_retriever(PatternRetriever(cond.library, model.cond.retrieval))
    ckpt_dir = fold_dir / "checkpoints"
    callbacks: list[Callback] = []
    for cb_cfg in cfg.callbacks.values():
        cb = build(cb_cfg)
        if isinstance(cb, ModelCheckpoint):
            cb.dirpath = str(ckpt_dir)
        callbacks.append(cb)
    logger = build(cfg.logger.mlflow, run_id=run_id, prefix=f"fold{fold.fold}")
    no_val = {} if len(fold.val) else {"limit_val_batches": 0}
    trainer: L.Trainer = build(cfg.trainer, logger=logger, callbacks=callbacks, default_root_dir=str(fold_dir),
                               **no_val)
    last = ckpt_dir / "last.ckpt"
    if last.exists():
        log.info("fold %d: resuming from %s", fold.fold, last)
    trainer.fit(model, datamodule=dm, ckpt_path=str(last) if last.exists() else None, weights_only=True)
    return model, trainer, cond


def run_fold(cfg: DictConfig, dm: MarketDataModule, fold: FoldIndex, tracker: RunTracker | None,
             output_dir: Path, position: int, n_folds: int) -> pl.DataFrame | None:
    """Fit (or reload) one fold and return its out-of-sample predictions; None on non-zero DDP ranks."""
    fold_dir = output_dir / "folds" / f"fold{fold.fold}"
    pred_path = fold_dir / "predictions.parquet"
    if pred_path.exists():
        log.info("fold %d (%d/%d): already complete, reusing %s", fold.fold, position, n_folds, pred_path)
        return pl.read_parquet(pred_path)
    start = time.perf_counter()
    model, trainer, cond = fit_fold(cfg, dm, fold, tracker.run_id if tracker else None, fold_dir)
    final = fold_dir / "final.ckpt"
    trainer.save_checkpoint(final, weights_only=True)  # collective under DDP: every rank calls it
    if not trainer.is_global_zero:
        return None
    s = dm.prepare()
    out = predict(model, dm.test_dataloader())
    frame = pl.DataFrame({
        "fold": np.full(len(fold.test), fold.fold, dtype=np.int32),
        "ts": s.t[fold.test], "t1": s.t1[fold.test],
        "symbol": np.asarray(s.symbols)[s.symbol_id[fold.test]],
        "signal": out["signal"], "forecast": out["forecast_z"] * dm.target_scale,
        "target": s.target[fold.test], "next_return": s.next_return[fold.test],
    })
    result = build(cfg.backtest).run(frame)
    cond_metrics = {**cond.metrics, **conditioning_report(model, dm.test_dataloader(), s.symbol_id[fold.test],
                                                          s.t[fold.test], seed=cfg.seed)}
    seconds = time.perf_counter() - start
    metrics = {"oos/loss": out["loss"], "oos/nll": out["nll"], "oos/act_steps": out["steps"],
               "oos/sharpe": result.sharpe,
               "oos/max_drawdown": result.max_drawdown, "seconds": seconds,
               "steps": float(trainer.global_step), "n_train": len(fold.train), "n_test": len(fold.test),
               **{f"sim/{k}": v for k, v in result.details().items()}, **cond_metrics}
    log.info("fold %d (%d/%d) | train %d val %d test %d | steps %d | oos loss %.4f | oos sharpe %.3f | %.0f s",
             fold.fold, position, n_folds, len(fold.train), len(fold.val), len(fold.test), trainer.global_step,
             out["loss"], result.sharpe, seconds)
    if tracker is not None:
        tracker.log_metrics({f"fold{fold.fold}-{k}": v for k, v in metrics.items()})
        tracker.log_artifact(final, f"checkpoints/fold{fold.fold}")
        final.unlink()  # kept once, in the MLflow artifact store (about 100 MB per fold for hrm_27m)
        if cond.library is not None:
            tracker.log_artifact(cond.library.save(fold_dir / "patterns" / f"fold{fold.fold}"), "patterns")
    frame = frame.with_columns(*(pl.lit(v).alias(k) for k, v in metrics.items()
                                 if k.startswith(("oos", SIM_PREFIX, *COND_PREFIXES))))
    frame.write_parquet(pred_path)
    (fold_dir / "checkpoints" / "last.ckpt").unlink(missing_ok=True)
    return frame


def train(cfg: DictConfig) -> float | None:
    """Run the whole job; returns ``cfg.objective`` from the run summary."""
    check_config(cfg)
    check_evaluation_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    dm: MarketDataModule = build(cfg.data)
    splitter = build(cfg.validation.splitter)
    samples = dm.prepare()
    with located(cfg.validation):
        folds = make_folds(splitter, samples.t, samples.t1, cfg.validation.val_fraction)
    selected = list(cfg.validation.folds) if cfg.validation.folds is not None else list(range(len(folds)))
    bad = [i for i in selected if not 0 <= i < len(folds)]
    if bad:
        raise ConfigError(f"validation.folds has {bad}, but the splitter makes folds 0..{len(folds) - 1}")

    output_dir = Path(cfg.paths.output_dir)
    tracker = None
    if rank_zero_only.rank == 0:
        tracker = RunTracker.open(cfg.logger.mlflow, output_dir, run_name=cfg.logger.mlflow.get("run_name"))
        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
        tracker.log_params(flatten_config(cfg))
        commit = git_commit(Path(__file__).resolve().parents[1])
        tracker.set_tags({"git.commit": commit, "mlflow.source.git.commit": commit,
                          "data.sha256": frame_sha256(dm.bars), "data.path": dm.path, "data.name": dm.name,
                          "data.synthetic": dm.synthetic, "output_dir": str(output_dir.resolve()),
                          **override_tags(overrides), **{f"tag.{t}": "1" for t in cfg.tags}})
        resolved = output_dir / "config.yaml"
        resolved.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        tracker.log_artifact(resolved)
        log.info("MLflow run %s (%s); %d folds, %d samples, %s", tracker.run_id, tracker.tracking_uri,
                 len(selected), len(samples), "synthetic data" if dm.synthetic else dm.name)

    frames = []
    try:
        for position, i in enumerate(selected, start=1):
            frames.append(run_fold(cfg, dm, folds[i], tracker, output_dir, position, len(selected)))
        if tracker is None:
            return None
        predictions = pl.concat(frames)
        pred_path = output_dir / "oos_predictions.parquet"
        predictions.write_parquet(pred_path)
        tracker.log_artifact(pred_path)
        tracker.log_metrics(fold_means(predictions, COND_PREFIXES) | fold_sums(predictions, (SIM_PREFIX,)))
        model = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                      n_symbols=dm.n_symbols)
        counts = count_parameters(model.net)
        outcome = finish_training_run(
            cfg, tracker, predictions=predictions, splitter=splitter, t=samples.t, folds=selected, bars=dm.bars,
            counts=counts, budget_table=format_budget_table(counts, model.budget),
            data_label=dm.name + (" -- SYNTHETIC (a seeded model market, not real data)" if dm.synthetic else ""),
            output_dir=output_dir)
        tracker.finish()
    except BaseException as err:
        if tracker is not None:
            tracker.finish("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    failed = [r.gate.name for r in outcome.gates if r.status == FAIL]
    if cfg.validation.strict and failed:
        raise GatesFailed(f"validation.strict=true and {len(failed)} gate(s) failed: {', '.join(failed)} "
                          f"(see the gates table above; run {tracker.run_id})")
    return float(outcome.metrics[cfg.objective])


def _per_fold(predictions: pl.DataFrame, prefixes: tuple[str, ...]) -> pl.DataFrame:
    """One row per fold of the per-fold metric columns starting with one of ``prefixes``."""
    cols = [c for c in predictions.columns if c.startswith(prefixes)]
    return predictions.group_by("fold").agg(pl.col(c).first() for c in cols).drop("fold")


def fold_means(predictions: pl.DataFrame, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Run-level value of each per-fold metric (rates, bits, latencies): the mean over folds."""
    return {c: float(v.mean()) for c, v in _per_fold(predictions, prefixes).to_dict().items()}


def fold_sums(predictions: pl.DataFrame, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Run-level value of each per-fold count (fills, rejections, violations): the sum over folds."""
    return {c: float(v.sum()) for c, v in _per_fold(predictions, prefixes).to_dict().items()}


@hydra.main(version_base="1.3", config_path="../conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    try:
        return train(cfg)
    except DualHRQError as err:
        log.error("%s: %s", type(err).__name__, err)
        raise SystemExit(2) from None
    except GatesFailed as err:
        log.error("%s", err)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
