"""One CV fold, start to end: fit its inputs, conditioning and model (resuming from ``last.ckpt``), save
its decision pipeline, predict its test samples out of sample and replay them.

A fold whose ``predictions.parquet`` exists is complete and is read back, so a killed job resumes at the
fold it was in, and inside that fold at its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import polars as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from dualhrq.config import build, located
from dualhrq.data.samples import SampleSet
from dualhrq.data.scaling import Standardizer
from dualhrq.errors import DataError
from dualhrq.models.lit_module import HRMLitModule
from dualhrq.models.network import NetOutput
from dualhrq.models.params import count_parameters
from dualhrq.models.precision import resolve_precision
from dualhrq.models.supervision import Supervision
from dualhrq.patterns.retrieval import PatternRetriever
from dualhrq.pipeline.decision import CHECKPOINT, DecisionPipeline
from dualhrq.pipeline.inputs import FittedInputs
from dualhrq.tracking.mlflow_run import RunTracker
from dualhrq.training.checkpoints import LAST, PREVIOUS_SUFFIX, AtomicCheckpointIO, usable_checkpoint, write_atomically
from dualhrq.training.conditioning import ConditioningFit, FoldConditioning, fit_fold_conditioning
from dualhrq.training.conditioning_report import conditioning_report
from dualhrq.training.datamodule import MarketDataModule
from dualhrq.training.input_leakage import feature_columns, input_leakage, window_summary
from dualhrq.training.resume import ExactResume
from dualhrq.validation.controls import label_control
from dualhrq.validation.folds import REFIT, FoldIndex, fold_label, make_folds, select_folds
from dualhrq.validation.leakage import MI_LIMIT_BITS, symbol_screen
from dualhrq.validation.oos import COND_PREFIXES, PARAMS_PREFIX, SIM_PREFIX

log = logging.getLogger("dualhrq.train")


def fit_inputs(samples: SampleSet, fold: FoldIndex, cond: FoldConditioning,
               max_mi_bits: float | None = MI_LIMIT_BITS) -> FittedInputs:
    """Feature and regime z-scores per symbol over the training windows' rows, the target scale, and the
    conditioning's fitted inputs. Per symbol, so that a level telling the symbols apart (an index's typical
    volatility) is no input to learn the symbol from; feature columns whose windows still tell the symbols
    apart on the training samples, jointly by more than ``max_mi_bits`` (null: no screen), are zeroed."""
    rows = np.unique((samples.end_row[fold.train, None] - np.arange(samples.seq_len)[None, :]).ravel())
    scale = float(np.std(samples.target[fold.train]))
    if not np.isfinite(scale) or scale <= 0:
        raise DataError(f"fold {fold.fold}: the training targets are constant; check data.horizon "
                        "and that the prices move")
    groups, n_groups = samples.row_symbol, len(samples.symbols)
    features = Standardizer.fit(samples.features, rows, groups, n_groups)
    keep = None
    if max_mi_bits is not None and n_groups > 1:
        summary = window_summary(features.transform(samples.features, groups), samples, fold.train)
        keep = symbol_screen(summary, samples.symbol_id[fold.train], samples.t[fold.train],
                             feature_columns(samples.features.shape[1]), max_mi_bits)
        if not keep.any():
            raise DataError(f"fold {fold.fold}: every input feature tells the symbols apart on the training samples "
                            f"(> model.conditioning.max_input_mi_bits={max_mi_bits}). Fix: raise that limit or use "
                            "features that describe the market, not the instrument.")
    return FittedInputs(features=features, regime=Standardizer.fit(samples.regime, rows, groups, n_groups),
                        target_scale=scale, symbols=list(samples.symbols), regime_inputs=cond.regime_inputs,
                        queries=cond.queries, feature_keep=keep)


def training_samples(cfg: DictConfig, samples: SampleSet, fold: FoldIndex) -> SampleSet:
    """The samples a fold fits on: the data's own, or under ``validation.control=shuffle`` a copy whose
    training and validation targets are permuted in blocks of days (test targets unchanged)."""
    with located(cfg.validation):
        control = label_control(cfg.validation.control, cfg.validation.shuffle_block_days)
        if control is None:
            return samples
        target = control.permute(samples.target, samples.t, samples.symbol_id, [fold.train, fold.val],
                                 seed=cfg.seed, fold=fold.fold)
    return dataclasses.replace(samples, target=target)


@dataclass
class FittedFold:
    pipeline: DecisionPipeline
    trainer: L.Trainer
    conditioning: FoldConditioning


def fit_fold(cfg: DictConfig, dm: MarketDataModule, fold: FoldIndex, run_id: str | None,
             fold_dir: Path) -> FittedFold:
    """Train one fold's model, resuming exactly from its last usable checkpoint when there is one. Regime
    labels and the pattern library are fitted on the fold's training part first."""
    data = dm.prepare()
    samples = training_samples(cfg, data, fold)
    cond_fit = ConditioningFit.from_config(cfg.model.conditioning)
    cond = fit_fold_conditioning(cond_fit, samples, fold)
    inputs = fit_inputs(samples, fold, cond, cond_fit.max_input_mi_bits)
    labels = cond.labels
    if samples is not data:  # a control's targets replace the data's in every split (test rows equal)
        labels = {**labels, "target_z": (samples.target / inputs.target_scale).astype(np.float32)}
    with located(cfg.model):
        supervision = Supervision.from_config(cfg.model.get("supervision"))
    dm.set_fold(fold, inputs, labels=labels, seed=cfg.seed, slots=supervision.slots,
                dense_bars=supervision.bars(samples.seq_len))
    cond.metrics |= input_leakage(inputs, data, fold)
    L.seed_everything(cfg.seed, workers=True)
    model: HRMLitModule = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                                n_symbols=dm.n_symbols, target_scale=inputs.target_scale)
    if cond.library is not None:
        model.attach_retriever(PatternRetriever(cond.library, cond_fit.retrieval))
    ckpt_dir = fold_dir / "checkpoints"
    callbacks: list[Callback] = [ExactResume(dm.train_sampler, seed=cfg.seed)]
    for cb_cfg in cfg.callbacks.values():
        cb = build(cb_cfg)
        if isinstance(cb, ModelCheckpoint):
            cb.dirpath = str(ckpt_dir)
        callbacks.append(cb)
    logger = build(cfg.logger.mlflow, run_id=run_id, prefix=fold_label(fold))
    no_val = {} if len(fold.val) else {"limit_val_batches": 0}
    precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    trainer: L.Trainer = build(cfg.trainer, logger=logger, callbacks=callbacks, default_root_dir=str(fold_dir),
                               precision=precision, plugins=[AtomicCheckpointIO()], **no_val)
    resume = usable_checkpoint(ckpt_dir)
    if resume is not None:
        log.info("%s: resuming from %s", "refit" if fold.fold == REFIT else f"fold {fold.fold}", resume)
    trainer.fit(model, datamodule=dm, ckpt_path=str(resume) if resume else None, weights_only=True)
    model_config = OmegaConf.to_container(cfg.model, resolve=True)
    window = {"feature_names": samples.feature_names, "regime_names": samples.regime_names,
              "seq_len": samples.seq_len, "horizon": samples.horizon}
    pipeline = DecisionPipeline(inputs, model, model_config, window, eval_batch_size=dm.eval_batch_size,
                                precision=cfg.trainer.precision)
    return FittedFold(pipeline, trainer, cond)


def predict_fold(pipeline: DecisionPipeline, samples: SampleSet, fold: FoldIndex) -> tuple[pl.DataFrame, dict]:
    """Out-of-sample predictions of the fold's test samples and the fold's loss on them."""
    test = fold.test
    out = pipeline.predict(samples, test)
    module = pipeline.module
    batch = {"target_z": torch.from_numpy((samples.target[test] / pipeline.inputs.target_scale).astype(np.float32)),
             "next_return": torch.from_numpy(samples.next_return[test].astype(np.float32)),
             "symbol": torch.from_numpy(samples.symbol_id[test]),
             "date": torch.from_numpy(samples.t[test].astype("datetime64[us]").astype(np.int64))}
    terms = module.loss_terms(NetOutput(signal=torch.from_numpy(out.signal), forecast=torch.from_numpy(
        out.forecast_z)), batch)
    frame = pl.DataFrame({
        "fold": np.full(len(test), fold.fold, dtype=np.int32),
        "ts": samples.t[test], "t1": samples.t1[test],
        "symbol": np.asarray(samples.symbols)[samples.symbol_id[test]],
        "signal": out.signal, "forecast": out.forecast_z[:, 0] * pipeline.inputs.target_scale,
        "target": samples.target[test], "next_return": samples.next_return[test],
    })
    metrics = {"oos/loss": float(terms["loss"]), "oos/nll": float(terms["nll"]),
               "oos/act_steps": float(out.steps.mean())}
    return frame, metrics


def predict_from_pipelines(run_cfg: DictConfig, load: Callable[[int], DecisionPipeline]) -> pl.DataFrame:
    """A finished run's out-of-sample predictions made again by its saved decision pipelines (``load(fold)``),
    on the data and folds its config names."""
    dm: MarketDataModule = build(run_cfg.data)
    with located(run_cfg.data):
        samples = dm.prepare()
    splitter = build(run_cfg.validation.splitter)
    folds = select_folds(make_folds(splitter, samples.t, samples.t1, run_cfg.validation.val_fraction,
                                    samples.t0),
                         run_cfg.validation.folds)
    return pl.concat([predict_fold(load(fold.fold), samples, fold)[0] for fold in folds])


def save_pipeline(fitted: FittedFold, directory: Path) -> bool:
    """Write the fitted fold's decision pipeline to ``directory`` (replacing what a killed job left there);
    True on the process that holds it (rank zero)."""
    trainer = fitted.trainer
    if trainer.is_global_zero:  # one process clears it: another one's rmtree could remove the file being saved
        shutil.rmtree(directory, ignore_errors=True)  # left by a job killed while saving it
    trainer.strategy.barrier("pipeline directory cleared")
    trainer.save_checkpoint(directory / CHECKPOINT, weights_only=True)  # collective under DDP
    if not trainer.is_global_zero:
        return False
    fitted.pipeline.save(directory)
    return True


def run_fold(cfg: DictConfig, dm: MarketDataModule, fold: FoldIndex, tracker: RunTracker | None,
             output_dir: Path, position: int, n_folds: int) -> pl.DataFrame | None:
    """Fit (or reload) one fold and return its out-of-sample predictions; None on non-zero DDP ranks."""
    fold_dir = output_dir / "folds" / f"fold{fold.fold}"
    pred_path = fold_dir / "predictions.parquet"
    if pred_path.exists():
        log.info("fold %d (%d/%d): already complete, reusing %s", fold.fold, position, n_folds, pred_path)
        return pl.read_parquet(pred_path)
    start = time.perf_counter()
    fitted = fit_fold(cfg, dm, fold, tracker.run_id if tracker else None, fold_dir)
    trainer = fitted.trainer
    pipeline_dir = fold_dir / "pipeline" / f"fold{fold.fold}"
    if not save_pipeline(fitted, pipeline_dir):
        return None
    samples = dm.prepare()
    frame, oos = predict_fold(fitted.pipeline, samples, fold)
    result = build(cfg.backtest).run(frame)
    cond = fitted.conditioning
    report = conditioning_report(fitted.pipeline.module, fitted.pipeline.loader(samples, fold.test),
                                 samples.symbol_id[fold.test], samples.t[fold.test])
    seconds = time.perf_counter() - start
    metrics: dict[str, Any] = {
        **oos, "oos/sharpe": result.sharpe, "oos/max_drawdown": result.max_drawdown, "seconds": seconds,
        "steps": float(trainer.global_step), "n_train": len(fold.train), "n_test": len(fold.test),
        "embargo_days": fold.embargo_days,
        **{f"{SIM_PREFIX}{k}": v for k, v in result.details().items()}, **cond.metrics, **report}
    log.info("fold %d (%d/%d) | train %d val %d test %d | steps %d | oos loss %.4f | oos sharpe %.3f | %.0f s",
             fold.fold, position, n_folds, len(fold.train), len(fold.val), len(fold.test), trainer.global_step,
             oos["oos/loss"], result.sharpe, seconds)
    if tracker is not None:
        tracker.set_tags({"precision": trainer.precision})  # what trainer.precision resolved to on this machine
        tracker.log_metrics({f"fold{fold.fold}-{k}": v for k, v in metrics.items()})
        tracker.log_artifact(pipeline_dir, "checkpoints")
        shutil.rmtree(pipeline_dir)  # kept once, in the MLflow artifact store (about 100 MB per fold for hrm_27m)
        if cond.library is not None:
            tracker.log_artifact(cond.library.save(fold_dir / "patterns" / f"fold{fold.fold}"), "patterns")
    counts = {f"{PARAMS_PREFIX}{k}": v for k, v in count_parameters(fitted.pipeline.module.net).items()}
    frame = frame.with_columns(*(pl.lit(v).alias(k) for k, v in metrics.items()
                                 if k.startswith(("oos", SIM_PREFIX, *COND_PREFIXES))),
                               *(pl.lit(v).alias(k) for k, v in counts.items()))
    write_atomically(pred_path, frame.write_parquet)
    for name in (LAST, LAST + PREVIOUS_SUFFIX):
        (fold_dir / "checkpoints" / name).unlink(missing_ok=True)
    return frame
