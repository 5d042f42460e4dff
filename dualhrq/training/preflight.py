"""Refuse impossible or unsupported training settings before any data is read or a run is opened."""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback as HydraCallback
from omegaconf import DictConfig, OmegaConf

from dualhrq.config import build, check_arguments, check_value, located, positive_int
from dualhrq.errors import ConfigError
from dualhrq.models.lit_module import check_model_config
from dualhrq.models.precision import resolve_precision
from dualhrq.models.supervision import Supervision
from dualhrq.tracking.job import RECORDED_CONFIG
from dualhrq.tracking.mlflow_run import flatten_config
from dualhrq.training.conditioning import ConditioningFit
from dualhrq.validation.controls import label_control
from dualhrq.validation.oos import OBJECTIVES

log = logging.getLogger("dualhrq.train")
OUTPUT_FIELD = "hydra.run.dir (paths.output_dir)"
# settings a resumed job may change: where the job was started from
RESUME_MAY_DIFFER = ("paths.root_dir",)


def check_training_config(cfg: DictConfig) -> None:
    """The model and its conditioning, every trainer and callback argument's type, the step caps, the
    trainer's precision, the splitter, the label control, the backtest, the objective and the data sizes."""
    check_model_config(cfg.model, seq_len=cfg.data.seq_len)
    check_arguments(cfg.model)
    check_arguments(cfg.trainer, skip=("precision",))  # precision=auto is resolved by the job
    check_arguments(cfg.callbacks)
    if cfg.trainer.max_steps < -1 or cfg.trainer.max_steps == 0:
        raise ConfigError(f"trainer.max_steps must be -1 (no cap) or a positive integer, got "
                          f"{cfg.trainer.max_steps}.")
    if cfg.trainer.max_epochs is not None and (cfg.trainer.max_epochs < -1 or cfg.trainer.max_epochs == 0):
        raise ConfigError(f"trainer.max_epochs must be -1 or null (no cap) or a positive integer, got "
                          f"{cfg.trainer.max_epochs}.")
    resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    ConditioningFit.from_config(cfg.model.conditioning)
    build(cfg.validation.splitter)
    with located(cfg.validation):
        label_control(cfg.validation.control, cfg.validation.shuffle_block_days)
    build(cfg.backtest)
    if cfg.objective not in OBJECTIVES:
        raise ConfigError(f"objective={cfg.objective!r} is not a run metric; choose one of {sorted(OBJECTIVES)}")
    for key in ("seq_len", "horizon", "stride", "batch_size"):
        positive_int(cfg.data[key], f"data.{key}")
    check_registry_config(cfg)
    with located(cfg.model):
        dense = Supervision.from_config(cfg.model.get("supervision")).dense
    if dense and cfg.data.stride != 1:
        raise ConfigError(f"data.stride={cfg.data.stride} keeps only every {cfg.data.stride}th bar as a decision, but "
                          "model.supervision.dense=true trains a decision at every bar. Fix: set data.stride=1, or "
                          "model.supervision.dense=false.")


def prepare_output_dir(cfg: DictConfig) -> Path:
    """The job's output directory, created and shown to be writable; a ``ConfigError`` naming the setting
    when it cannot be."""
    return writable_dir(Path(str(cfg.paths.output_dir)), OUTPUT_FIELD)


def writable_dir(path: Path, field: str) -> Path:
    """``path`` created if need be and shown to be writable, else a ``ConfigError`` naming ``field``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise ConfigError(f"{field}={path}: the directory cannot be written ({err.strerror or err}). "
                          f"Fix: point {field.split()[0]} at a writable directory.") from None
    return path


class OutputDirCheck(HydraCallback):
    """Checks Hydra's run or sweep directory before Hydra creates it, so a bad one stops the job with one line
    naming the setting (exit status 2) rather than a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config.hydra.sweep.dir, "hydra.sweep.dir")

    @staticmethod
    def _check(directory: str, field: str) -> None:
        try:
            writable_dir(Path(str(directory)), field)
        except ConfigError as err:
            log.error("ConfigError: %s", err)
            raise SystemExit(2) from None


def check_resume(cfg: DictConfig, output_dir: Path) -> None:
    """A job started in an output directory that holds a run resumes it only with the same config: otherwise
    it would mix results of two configs. Refused with the differing keys listed."""
    recorded_path = output_dir / RECORDED_CONFIG
    if not recorded_path.is_file():
        return
    recorded = flatten_config(OmegaConf.load(recorded_path))
    current = flatten_config(cfg)
    keys = sorted(k for k in recorded.keys() | current.keys()
                  if k not in RESUME_MAY_DIFFER and recorded.get(k, "<unset>") != current.get(k, "<unset>"))
    if keys:
        shown = "; ".join(f"{k}: recorded {recorded.get(k, '<unset>')!r}, now {current.get(k, '<unset>')!r}"
                          for k in keys[:10])
        more = f" (and {len(keys) - 10} more)" if len(keys) > 10 else ""
        raise ConfigError(f"{OUTPUT_FIELD}={output_dir} holds a run started with another config, so it cannot be "
                          f"resumed with this one: {shown}{more}. Fix: rerun with the recorded values to resume "
                          "it, or start a new run in a new directory (leave hydra.run.dir unset).")


def check_registry_config(cfg: DictConfig) -> None:
    """``validation.refit`` and ``registry.*``: what the end of the job registers must exist by then."""
    check_value("validation.refit", cfg.validation.refit, bool)
    reg = cfg.registry
    check_value("registry.register", reg.register, bool)
    if not reg.register:
        return
    source = str(reg.source)
    if not re.fullmatch(r"refit|fold\d+", source):
        raise ConfigError(f"registry.source must be refit or fold<i>, got {source!r}.", field="registry.source")
    if source == "refit" and not cfg.validation.refit:
        raise ConfigError("registry.register=true packages the final model (registry.source=refit), which only "
                          "validation.refit=true fits. Fix: add validation.refit=true, or registry.source=fold<i>.",
                          field="registry.source")
    folds = cfg.validation.folds
    if source.startswith("fold") and folds is not None and int(source[4:]) not in list(folds):
        raise ConfigError(f"registry.source={source} names a fold this job does not train (validation.folds="
                          f"{list(folds)}).", field="registry.source")
    if str(cfg.data.features.get("_target_", "")).endswith("IntradayFeatureSpec"):
        raise ConfigError("registry.register=true: a served model computes its features from a request's bars, "
                          "and intraday features read session state and option chains a request does not carry. "
                          "Fix: register a model trained on daily bars.", field="registry.register")
