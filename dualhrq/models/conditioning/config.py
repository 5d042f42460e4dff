"""``model.cond``: the settings of regime labels, the pattern library and fail-open retrieval, validated."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dualhrq.config import parse
from dualhrq.errors import ConfigError, positive_int
from dualhrq.models.conditioning.breaker import BreakerConfig
from dualhrq.models.conditioning.regime_labels import RegimeLabelConfig
from dualhrq.patterns.detection import check_scales
from dualhrq.patterns.index import IndexConfig
from dualhrq.patterns.library import LibraryConfig


@dataclass(frozen=True)
class PatternConfig:
    """``model.cond.patterns``: window scales (bars), block points per window, embedding dim, P pooled
    contexts, and the library (``k``, codebook, capacity, age, index...)."""

    scales: tuple[int, ...] = (8, 16, 32)
    points: int = 8
    dim: int = 16
    pool_queries: int = 2
    library: LibraryConfig = field(default_factory=LibraryConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", check_scales(self.scales, self.points))
        positive_int(self.dim, "model.cond.patterns.dim")
        positive_int(self.pool_queries, "model.cond.patterns.pool_queries")

    @property
    def token_dim(self) -> int:
        """Width of a neighbour token: embedding, outcome, scale one-hot, distance, age."""
        return self.dim + len(self.scales) + 3


@dataclass(frozen=True)
class CondConfig:
    regimes: int = 4
    regime_loss_weight: float = 0.1
    max_input_mi_bits: float | None = 0.1
    labels: RegimeLabelConfig = field(default_factory=RegimeLabelConfig)
    patterns: PatternConfig = field(default_factory=PatternConfig)
    retrieval: BreakerConfig = field(default_factory=BreakerConfig)

    def __post_init__(self) -> None:
        positive_int(self.regimes, "model.cond.regimes")
        if self.regimes < 2:
            raise ConfigError(f"model.cond.regimes must be at least 2, got {self.regimes}.")
        if self.max_input_mi_bits is not None and not self.max_input_mi_bits > 0:
            raise ConfigError(f"model.cond.max_input_mi_bits must be positive or null, got {self.max_input_mi_bits!r}.")
        if not self.regime_loss_weight >= 0:
            raise ConfigError(f"model.cond.regime_loss_weight must be >= 0, got {self.regime_loss_weight!r}.")

    @classmethod
    def from_config(cls, cond: Mapping[str, Any] | None) -> CondConfig:
        """Parse ``model.cond`` (a mapping or DictConfig; None gives the defaults)."""
        raw = OmegaConf.to_container(cond, resolve=True) if isinstance(cond, DictConfig) else dict(cond or {})
        try:
            patterns = dict(raw.pop("patterns", {}) or {})
            library = dict(patterns.pop("library", {}) or {})
            index = _make(IndexConfig, library.pop("index", {}) or {}, "model.cond.patterns.library.index")
            patterns["library"] = _make(LibraryConfig, {**library, "index": index}, "model.cond.patterns.library")
            if "scales" in patterns:
                patterns["scales"] = tuple(patterns["scales"])
            raw["patterns"] = _make(PatternConfig, patterns, "model.cond.patterns")
            raw["labels"] = _make(RegimeLabelConfig, raw.get("labels") or {}, "model.cond.labels")
            raw["retrieval"] = _make(BreakerConfig, raw.get("retrieval") or {}, "model.cond.retrieval")
            return _make(cls, raw, "model.cond")
        except TypeError as err:
            raise ConfigError(f"model.cond: {err}") from None

    def net_sizes(self) -> dict[str, int]:
        """The network's conditioning sizes: regimes, pattern token width, pooled contexts."""
        return {"n_regimes": self.regimes, "pattern_token_dim": self.patterns.token_dim,
                "pool_queries": self.patterns.pool_queries}


def _make(cls: type, values: Mapping[str, Any], where: str) -> Any:
    try:
        return parse(cls, values, where)
    except ConfigError as err:  # names the full path now: not to be prefixed again (e.g. under build(cfg.model))
        raise ConfigError(str(err)) from None
