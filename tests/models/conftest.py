"""Tiny DualHRQNet builders shared by the model tests."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from dualhrq.config import compose_train, model_sizes
from dualhrq.models.conditioning import ConditionerFactory
from dualhrq.models.network import DualHRQNet

N_FEATURES, N_REGIME, N_SYMBOLS = 5, 3, 4


@lru_cache
def _group(kind: str, model: str) -> DictConfig:
    return compose_train([f"model={model}", f"model/conditioning={kind}"]).model.conditioning


def conditioner(kind: str, model: str = "hrm_tiny") -> ConditionerFactory | None:
    """The factory of ``conf/model/conditioning/<kind>.yaml`` as the job builds it (None for ``none``)."""
    module = _group(kind, model).module
    return None if module is None else instantiate(module)


def tiny_net(conditioning: str = "regime", seed: int = 0, **overrides: object) -> DualHRQNet:
    """hrm_tiny with the ``model/conditioning`` group ``conditioning`` and ``overrides`` applied, built from
    ``seed``."""
    factory = conditioner(conditioning)
    torch.manual_seed(seed)
    kwargs = {**model_sizes("hrm_tiny")["net"], **overrides}
    return DualHRQNet(n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS,
                      conditioner=factory, **kwargs)


def batch(b: int = 3, t: int = 10, seed: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """A random (x, regime, symbol) batch."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, t, N_FEATURES, generator=g), torch.randn(b, N_REGIME, generator=g),
            torch.randint(0, N_SYMBOLS, (b,), generator=g))


def perturb_film(net: DualHRQNet, seed: int = 2) -> None:
    """Give the zero-initialised FiLM output layer random weights so conditioning acts."""
    g = torch.Generator().manual_seed(seed)
    last = net.conditioning.film.net[-1]
    with torch.no_grad():
        last.weight.copy_(0.3 * torch.randn(last.weight.shape, generator=g))
        last.bias.copy_(0.3 * torch.randn(last.bias.shape, generator=g))


@pytest.fixture
def make_net() -> Callable[..., DualHRQNet]:
    return tiny_net


@pytest.fixture
def make_batch() -> Callable[..., tuple[Tensor, Tensor, Tensor]]:
    return batch


@pytest.fixture
def film_on() -> Callable[[DualHRQNet], None]:
    return perturb_film
