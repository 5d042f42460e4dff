"""Where the Hydra config tree lives, and composing it outside a Hydra app.

Tools, tests and benchmarks read model sizes and budgets from ``conf/``
through these helpers, so the YAML files stay the one home of those numbers.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dualhrq.errors import DualHRQError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def compose_train(overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, as ``python -m dualhrq.train`` would compose it."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


def model_sizes(name: str) -> dict[str, Any]:
    """``{"net": DualHRQNet kwargs, "budget": ...}`` of ``conf/model/<name>.yaml``."""
    return copy.deepcopy(_model_sizes(name))


@lru_cache
def _model_sizes(name: str) -> dict[str, Any]:
    model = compose_train([f"model={name}"]).model
    net = OmegaConf.to_container(model.net, resolve=True)
    net = {k: v for k, v in net.items() if not k.startswith("_")}
    return {"net": net, "budget": OmegaConf.to_container(model.budget, resolve=True)}


def build(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets the product's own input errors through unwrapped.

    Hydra wraps constructor errors in ``InstantiationException``; a user should
    see the ``ConfigError``/``DataError`` that names the field, not the wrapper.
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause: BaseException | None = err
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if isinstance(cause, DualHRQError):
            raise cause from None
        raise
