"""Adaptive computation time with Q-learned halting, as in the HRM (Wang et al. 2025, sec. 3.3).

A decision is refined over segments: each segment is one full HRM forward
pass from the previous segment's (detached) carry. A Q head on the H state
scores (halt, continue). Training targets follow the reference:

* halt: was this segment's answer correct? ``correct=signal`` (the default)
  judges the decision the model trades: 1 when the position's sign matches the
  realised return's, 0 when it is opposite, and 0.5 when either is exactly
  zero (a flat position or an unchanged price: neither right nor wrong).
  ``forecast_sign`` judges the forecast head's sign the same way and
  ``abs_error`` its standardised error against a threshold;
* continue: the value of going on, bootstrapped from a no-grad next segment:
  sigmoid(Q_halt') at the last allowed step, else sigmoid(max(Q_halt', Q_continue')).

During training a sample halts when Q_halt > Q_continue or at
``halt_max_steps``; with probability ``exploration_prob`` it is first held for
a random minimum of 2..halt_max_steps segments. Training halts whole blocks of
samples (``carry.py`` says why): a block by its samples' mean margin
Q_halt - Q_continue, with exploration drawn per block.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from dualhrq.config import NonNegative, Positive, PositiveInt, Probability, check_fields, one_of, parse

CORRECTNESS = ("signal", "forecast_sign", "abs_error")
EVAL_MODES = ("halt", "max_steps")


@dataclass(frozen=True)
class ACTConfig:
    """``model.act``. Disabled, every decision runs ``model.supervision.segments`` segments."""

    enabled: bool = True
    halt_max_steps: PositiveInt = 4
    exploration_prob: Probability = 0.1
    correct: Annotated[str, one_of(CORRECTNESS)] = "signal"
    threshold: Positive = 0.5
    loss_weight: NonNegative = 0.5
    eval_mode: Annotated[str, one_of(EVAL_MODES)] = "halt"

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, where: str = "act") -> ACTConfig:
        """Parse the mapping read at ``where`` (relative to the model's config)."""
        return parse(cls, cfg, where)


def is_correct(signal: Tensor, forecast_mean: Tensor, target: Tensor, cfg: ACTConfig) -> Tensor:
    """The halt head's training label per sample, in [0, 1] (0.5 for a sign tie, see the module's text)."""
    if cfg.correct == "abs_error":
        return ((forecast_mean - target).abs() < cfg.threshold).float()
    decision = signal if cfg.correct == "signal" else forecast_mean
    return (1.0 + torch.sign(decision) * torch.sign(target)) / 2


def halt(q: Tensor, steps: Tensor, cfg: ACTConfig, *, training: bool,
         generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(halted, is_last) per sample after a segment; ``q`` [B, 2] = (halt, continue) logits,
    ``steps`` the segments run so far including this one."""
    is_last = steps >= cfg.halt_max_steps
    halted = is_last.clone()
    if cfg.enabled and (training or cfg.eval_mode == "halt"):
        halted |= q[:, 0] > q[:, 1]
    if cfg.enabled and training and cfg.halt_max_steps > 1:
        explore = torch.rand(steps.shape, generator=generator, device=steps.device) < cfg.exploration_prob
        min_steps = torch.randint(2, cfg.halt_max_steps + 1, steps.shape, generator=generator, device=steps.device)
        halted &= steps >= torch.where(explore, min_steps, torch.zeros_like(min_steps))
    return halted, is_last


def halt_blocks(q: Tensor, block: Tensor, steps: Tensor, cfg: ACTConfig) -> Tensor:
    """Which training blocks halt after a segment [n_blocks]: ``q`` [B, 2] per sample, ``block`` [B] each
    sample's block, ``steps`` [n_blocks] the segments each block has run including this one."""
    margin = (q[:, 0] - q[:, 1]).detach().float()
    count = torch.bincount(block, minlength=len(steps)).clamp(min=1)
    mean = torch.zeros(len(steps), device=q.device).index_add(0, block, margin) / count
    halted, _ = halt(torch.stack([mean, torch.zeros_like(mean)], dim=1), steps, cfg, training=True)
    return halted


def continue_target(next_q: Tensor, is_last: Tensor) -> Tensor:
    """Bootstrapped target probability for Q_continue from the next segment's (halt, continue) logits."""
    best = torch.where(is_last, next_q[:, 0], next_q.max(dim=1).values)
    return torch.sigmoid(best)


def q_loss(q: Tensor, correct: Tensor, target_continue: Tensor) -> Tensor:
    """Binary cross-entropy of both Q logits against their targets (the reference's sum)."""
    return (F.binary_cross_entropy_with_logits(q[:, 0], correct)
            + F.binary_cross_entropy_with_logits(q[:, 1], target_continue))
