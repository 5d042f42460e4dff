"""Learning-rate schedule: linear warmup, then cosine decay, as the HRM reference trains.

The multiplier of the base rate after ``step`` optimiser steps of ``total_steps``
is ``step / warmup`` during the warmup (``warmup = ceil(warmup_fraction *
total_steps)``), then ``min_lr_ratio + (1 - min_lr_ratio) * (1 + cos(pi * p)) / 2``
with ``p`` the fraction of the remaining steps done. The warmup is a fraction
of the run so the same config serves a three-step test and the main job.
"""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from dualhrq.config import Probability, check_value, positive_int


def lr_multiplier(step: int, total_steps: int, warmup_fraction: float, min_lr_ratio: float) -> float:
    """The factor on the base learning rate for the update that follows ``step`` updates."""
    warmup = math.ceil(warmup_fraction * total_steps)
    if step < warmup:
        return (step + 1) / (warmup + 1)
    done = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * done))


def cosine_with_warmup(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_fraction: float = 0.05,
                       min_lr_ratio: float = 0.1) -> LambdaLR:
    """``model.scheduler``: the schedule over ``total_steps`` optimiser steps (the LightningModule passes the
    fit's count); ``warmup_fraction`` and ``min_lr_ratio`` in [0, 1]."""
    positive_int(total_steps, "total_steps")
    check_value("warmup_fraction", warmup_fraction, Probability)
    check_value("min_lr_ratio", min_lr_ratio, Probability)
    return LambdaLR(optimizer, lambda step: lr_multiplier(step, total_steps, warmup_fraction, min_lr_ratio))
