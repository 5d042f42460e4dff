"""Refuse impossible or unsupported training settings before any data is read."""

from __future__ import annotations

from omegaconf import DictConfig

from dualhrq.config import build, located, positive_int
from dualhrq.errors import ConfigError
from dualhrq.models.lit_module import check_model_config
from dualhrq.models.precision import resolve_precision
from dualhrq.training.conditioning import ConditioningFit
from dualhrq.validation.controls import label_control
from dualhrq.validation.oos import OBJECTIVES


def check_training_config(cfg: DictConfig) -> None:
    """The model and its conditioning, the trainer's precision, the splitter, the label control, the backtest,
    the objective and the data sizes."""
    check_model_config(cfg.model)
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
