"""Cosine learning-rate schedule with linear warmup, and where the module takes its length from."""

import math
from functools import partial

import pytest
import torch
from omegaconf import OmegaConf

from dualhrq.config import compose_train
from dualhrq.errors import ConfigError
from dualhrq.models.lit_module import check_model_config
from dualhrq.models.schedule import cosine_with_warmup


def rates(total: int, warmup_fraction: float, min_lr_ratio: float, base: float = 2.0) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    sched = cosine_with_warmup(opt, total_steps=total, warmup_fraction=warmup_fraction, min_lr_ratio=min_lr_ratio)
    out = []
    for _ in range(total + 1):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_decay_hand_worked():
    lr = rates(total=100, warmup_fraction=0.1, min_lr_ratio=0.2)  # 10 warmup steps, 90 of decay
    assert lr[0] == pytest.approx(2.0 / 11)
    assert lr[9] == pytest.approx(2.0 * 10 / 11)
    assert lr[10] == pytest.approx(2.0)
    assert lr[55] == pytest.approx(2.0 * (0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert lr[100] == pytest.approx(2.0 * 0.2)
    assert all(a >= b for a, b in zip(lr[10:], lr[11:], strict=False))


def test_no_warmup_starts_at_the_base_rate():
    assert rates(total=4, warmup_fraction=0.0, min_lr_ratio=0.0)[0] == pytest.approx(2.0)


@pytest.mark.parametrize(("kwargs", "field"), [({"warmup_fraction": 1.5}, "warmup_fraction"),
                                                ({"min_lr_ratio": -0.1}, "min_lr_ratio"),
                                                ({"total_steps": 0}, "total_steps")])
def test_bad_settings_are_refused(kwargs, field):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError) as err:
        partial(cosine_with_warmup, opt, total_steps=10)(**kwargs)
    assert err.value.field == field


def test_preflight_refuses_a_bad_schedule_naming_its_config_path():
    model = compose_train(["model=hrm_tiny", "model.scheduler.warmup_fraction=2.0"]).model
    with pytest.raises(ConfigError) as err:
        check_model_config(model)
    assert err.value.field == "model.scheduler.warmup_fraction"
    check_model_config(compose_train(["model=hrm_tiny"]).model)
    OmegaConf.update(model, "scheduler", None)
    check_model_config(model)
