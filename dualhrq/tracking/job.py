"""Open a training job's MLflow run with what it was made from: config, overrides, code and data lineage,
and the Hydra multirun it belongs to."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dualhrq.tracking.lineage import frame_sha256, git_commit
from dualhrq.tracking.mlflow_run import RunTracker, flatten_config, override_tags
from dualhrq.tracking.sweep import planned_sweep

log = logging.getLogger("dualhrq.train")
REPO = Path(__file__).resolve().parents[2]
RECORDED_CONFIG = "config.yaml"


def open_job_run(cfg: DictConfig, output_dir: Path, *, bars: pl.DataFrame, data_name: str, data_path: str | None,
                 synthetic: bool) -> RunTracker:
    """The job's run (new, resumed or ``mlflow run``'s) with params, lineage tags and ``config.yaml`` logged."""
    tracker = RunTracker.open(cfg.logger.mlflow, output_dir, run_name=cfg.logger.mlflow.get("run_name"))
    try:
        overrides = HydraConfig.get().overrides.task if HydraConfig.initialized() else []
        sweep = planned_sweep(HydraConfig.get()) if HydraConfig.initialized() else {}
        tracker.log_params(flatten_config(cfg))
        commit = git_commit(REPO)
        tracker.set_tags({"git.commit": commit, "mlflow.source.git.commit": commit, "data.sha256": frame_sha256(bars),
                          "data.path": data_path, "data.name": data_name, "data.synthetic": synthetic,
                          "output_dir": str(output_dir.resolve()), **override_tags(overrides),
                          **sweep, **{f"tag.{t}": "1" for t in cfg.tags},
                          **({"control": cfg.validation.control} if cfg.validation.control else {})})
        resolved = output_dir / RECORDED_CONFIG
        resolved.write_text(OmegaConf.to_yaml(cfg, resolve=True))
        tracker.log_artifact(resolved)
    except BaseException:
        tracker.finish("FAILED")
        raise
    return tracker
