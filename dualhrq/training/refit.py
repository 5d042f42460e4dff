"""The final model (``validation.refit=true``): after the CV folds, one more fit on all the data.

Lopez de Prado (AFML, ch. 7) separates the two jobs: the folds estimate how
the procedure performs out of sample, and the model a desk would trade is the
same procedure fitted on everything. It has no test set of its own; the CV
folds are its evidence. Its decision pipeline is logged as the artifact
``checkpoints/refit``, the one the registry packages.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from omegaconf import DictConfig

from dualhrq.tracking.mlflow_run import RunTracker
from dualhrq.training.checkpoints import LAST, PREVIOUS_SUFFIX
from dualhrq.training.datamodule import MarketDataModule
from dualhrq.training.fold import fit_fold, save_pipeline
from dualhrq.validation.cpcv import CombinatorialPurgedKFold
from dualhrq.validation.folds import refit_fold

log = logging.getLogger("dualhrq.train")
REFIT_ARTIFACT = "checkpoints/refit"
DONE = "logged"  # marker: the refit's pipeline reached the run's artifacts (a resumed job skips it)


def run_refit(cfg: DictConfig, dm: MarketDataModule, splitter: CombinatorialPurgedKFold, tracker: RunTracker | None,
              output_dir: Path) -> None:
    """Fit the final model on every sample (resuming from its ``last.ckpt``) and log its pipeline."""
    refit_dir = output_dir / "refit"
    if (refit_dir / DONE).exists():
        log.info("refit: already logged, skipping")
        return
    samples = dm.prepare()
    fold = refit_fold(splitter, samples.t, samples.t1, cfg.validation.val_fraction, samples.t0)
    start = time.perf_counter()
    fitted = fit_fold(cfg, dm, fold, tracker.run_id if tracker else None, refit_dir)
    pipeline_dir = refit_dir / "pipeline" / "refit"
    if not save_pipeline(fitted, pipeline_dir):
        return
    seconds = time.perf_counter() - start
    log.info("refit | train %d val %d | steps %d | %.0f s", len(fold.train), len(fold.val),
             fitted.trainer.global_step, seconds)
    if tracker is not None:
        tracker.log_metrics({"refit/steps": float(fitted.trainer.global_step), "refit/seconds": seconds,
                             "refit/n_train": float(len(fold.train))})
        tracker.log_artifact(pipeline_dir, "checkpoints")
        shutil.rmtree(pipeline_dir)
    (refit_dir / DONE).write_text(REFIT_ARTIFACT + "\n")
    for name in (LAST, LAST + PREVIOUS_SUFFIX):
        (refit_dir / "checkpoints" / name).unlink(missing_ok=True)

