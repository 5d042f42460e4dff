"""``python -m dualhrq.train``: compose the job, then run its stages.

Check the config, the output directory, a resumed run's recorded config and the tracking store (before any
data is read or a run is opened), build the samples once and cut
the CPCV folds, fit and predict each fold (``dualhrq.training``: resumes
from a fold's ``last.ckpt``), evaluate the out-of-sample predictions
(``dualhrq.evaluation``: paths, statistics, gates, report), all logged to
one MLflow run. Returns the configured objective, for Hydra's sweepers.
"""

from __future__ import annotations

import logging
import warnings

import hydra
import lightning as L
import polars as pl
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from dualhrq.config import build, located
from dualhrq.data.planted import PlantedMarket
from dualhrq.errors import DualHRQError
from dualhrq.evaluation.run_end import check_evaluation_config, finish_training_run, raise_on_failed_gates
from dualhrq.features.engine import left_out_features
from dualhrq.registry.versions import register_run
from dualhrq.tracking.job import open_job_run
from dualhrq.tracking.store import check_tracking_store
from dualhrq.training.datamodule import MarketDataModule
from dualhrq.training.fold import run_fold
from dualhrq.training.preflight import check_resume, check_training_config, prepare_output_dir
from dualhrq.training.refit import run_refit
from dualhrq.validation.controls import SHUFFLE
from dualhrq.validation.folds import make_folds, select_folds
from dualhrq.validation.gates import GatesFailed

log = logging.getLogger("dualhrq.train")

# Deep supervision steps the optimiser itself; the checkpoint it resumes from is meant to hold the
# state after the step, which is what Lightning saves and warns about.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization")
# the resumable sampler is positioned by the job's ExactResume callback, which Lightning does not see
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")


def train(cfg: DictConfig) -> float | None:
    """Run the whole job; returns ``cfg.objective`` from the run summary (None on non-zero DDP ranks)."""
    check_training_config(cfg)
    check_evaluation_config(cfg)
    output_dir = prepare_output_dir(cfg)
    check_resume(cfg, output_dir)
    if rank_zero_only.rank == 0:
        check_tracking_store(str(cfg.logger.mlflow.tracking_uri))
    L.seed_everything(cfg.seed, workers=True)
    dm: MarketDataModule = build(cfg.data)
    splitter = build(cfg.validation.splitter)
    with located(cfg.data):
        samples = dm.prepare()
    with located(cfg.validation):
        folds = select_folds(make_folds(splitter, samples.t, samples.t1, cfg.validation.val_fraction,
                                        samples.t0), cfg.validation.folds)
    tracker = None
    if rank_zero_only.rank == 0:
        tracker = open_job_run(cfg, output_dir, bars=dm.bars, data_name=dm.name, data_path=dm.path,
                               synthetic=dm.synthetic)
    try:
        if tracker is not None:
            label, known = describe_data(cfg, dm)
            tracker.log_metrics(known)
            log.info("MLflow run %s (%s); %d folds, %d samples, %s", tracker.run_id, tracker.tracking_uri,
                     len(folds), len(samples), label)
            embargo = max(f.embargo_days for f in folds)
            log.info("effective embargo %d trading days (embargo_days=%d; input window %d bars + lookback %d)",
                     embargo, splitter.embargo_days, samples.seq_len, samples.lookback)
            tracker.log_metrics({"validation/embargo_days_effective": float(embargo)})
        frames = [run_fold(cfg, dm, fold, tracker, output_dir, i, len(folds)) for i, fold in enumerate(folds, 1)]
        if cfg.validation.refit:
            run_refit(cfg, dm, splitter, tracker, output_dir)
        if tracker is None:
            return None
        outcome = finish_training_run(cfg, tracker, predictions=pl.concat(frames), splitter=splitter, t=samples.t,
                                      folds=[f.fold for f in folds], bars=dm.bars, data_label=label,
                                      output_dir=output_dir)
        if cfg.registry.register:
            register_run(cfg.registry, tracker.client, tracker.run_id, trusted=tuple(cfg.registry.trusted_targets))
        tracker.finish()
    except BaseException as err:
        if tracker is not None:
            tracker.finish("KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED")
        raise
    raise_on_failed_gates(cfg, outcome, tracker.run_id)
    return float(outcome.metrics[cfg.objective])


def describe_data(cfg: DictConfig, dm: MarketDataModule) -> tuple[str, dict[str, float]]:
    """The data's label in the summary, naming a control the run is, and the figures the data's construction
    makes known (a planted market's Sharpe bound), to log."""
    label, known = dm.label, {}
    left_out = left_out_features(dm.spec)
    if left_out:
        label += f"; close-only bars: range and volume features left out ({', '.join(left_out)})"
    if isinstance(dm.source, PlantedMarket):
        known["data/planted_sharpe_bound"] = dm.source.sharpe_bound(cfg.backtest.periods_per_year)
        label += (f"; POSITIVE CONTROL: planted signal, a perfect model's Sharpe is "
                  f"{known['data/planted_sharpe_bound']:.2f} before costs")
    if cfg.validation.control == SHUFFLE:
        label += (f"; NEGATIVE CONTROL: training targets shuffled in {cfg.validation.shuffle_block_days}-day "
                  "blocks, so no edge is expected")
    return label, known


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
