"""``model.supervision`` and ``model.prediction``: which bars of a window are trained and read.

Without dense supervision only a window's last bar (the decision) is trained and predicted. With
``dense: true`` every bar from ``min_context`` on is trained, each against its own label: the network's
attention is causal and its FiLM per bar, so bar ``p`` of a window is a decision made from bars ``<= p``
with ``p`` bars of context before it. A window of ``seq_len`` bars then supervises its last
``seq_len - min_context`` bars, and a densely trained model can predict from windows taken every
``prediction.stride`` bars (at most that many), reading the last ``stride`` bars of each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dualhrq.config import NonNegativeInt, PositiveInt, check_fields, parse
from dualhrq.errors import ConfigError


@dataclass(frozen=True)
class Supervision:
    """``model.supervision``: the deep-supervision segments a block of samples runs, and the ``slots`` (blocks)
    each training step carries (``dualhrq.models.carry``); ``dense`` trains every bar with at least
    ``min_context`` earlier bars in its window (false: the last bar only)."""

    segments: PositiveInt = 1
    slots: PositiveInt = 1
    dense: bool = False
    min_context: NonNegativeInt = 8

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, where: str = "supervision") -> Supervision:
        return parse(cls, cfg, where)

    def bars(self, seq_len: int) -> int:
        """Bars each training window supervises: its last ``seq_len - min_context`` (dense), else 0 (the
        decision bar alone, the plain objective)."""
        if not self.dense:
            return 0
        if self.min_context >= seq_len:
            raise ConfigError(f"supervision.min_context={self.min_context} leaves no bar to supervise in a window of "
                              f"data.seq_len={seq_len} bars. Fix: set it below {seq_len} (the default is 8).",
                              field="supervision.min_context")
        return seq_len - self.min_context


@dataclass(frozen=True)
class Prediction:
    """``model.prediction``: ``stride`` > 1 predicts from windows every ``stride`` bars, each giving the
    decisions of its last ``stride`` bars (a densely trained model only); 1 runs one window per decision."""

    stride: PositiveInt = 1

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, where: str = "prediction") -> Prediction:
        return parse(cls, cfg, where)

    def check(self, supervision: Supervision, seq_len: int | None = None) -> None:
        """Refuse a stride that the model was not trained for, or that reads bars with less context than
        training gave (``seq_len``: the window, when known)."""
        if self.stride == 1:
            return
        if not supervision.dense:
            raise ConfigError(f"prediction.stride={self.stride} reads {self.stride} bars of each window, but only "
                              "the last bar is trained without dense supervision. Fix: set "
                              "model.supervision.dense=true, or model.prediction.stride=1.", field="prediction.stride")
        if seq_len is not None and self.stride > supervision.bars(seq_len):
            raise ConfigError(f"prediction.stride={self.stride} is more than the {supervision.bars(seq_len)} bars "
                              f"a window trains (data.seq_len={seq_len} - supervision.min_context="
                              f"{supervision.min_context}). Fix: set it to at most {supervision.bars(seq_len)}.",
                              field="prediction.stride")
