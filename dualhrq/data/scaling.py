"""Z-scores fitted on training rows only: the one standardiser of features, regime inputs and patterns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TINY = 1e-12  # a column this flat on the training rows is left unscaled


@dataclass
class Standardizer:
    """Column means and deviations [G, C], one row per group (G = 1: pooled over all rows).

    Fitted per group (``groups``: the symbol id of every row), a value is scaled by its own
    symbol's training statistics, so "high volatility" means high for that instrument; a group
    with fewer than two finite training rows falls back to the pooled statistics. Only finite
    training rows are used when ``finite_only`` (regime features have warm-up gaps).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, rows: np.ndarray | None = None, groups: np.ndarray | None = None,
            n_groups: int = 1, finite_only: bool = False) -> Standardizer:
        rows = np.arange(len(values)) if rows is None else rows
        if finite_only:
            rows = rows[np.isfinite(values[rows]).all(axis=1)]
        mean = np.repeat(values[rows].mean(axis=0)[None], n_groups if groups is not None else 1, axis=0)
        std = np.repeat(values[rows].std(axis=0)[None], len(mean), axis=0)
        if groups is not None:
            for g in np.unique(groups):
                own = rows[groups[rows] == g]
                if len(own) >= 2:
                    mean[g], std[g] = values[own].mean(axis=0), values[own].std(axis=0)
        return cls(mean=mean, std=np.where(std > _TINY, std, 1.0))

    def transform(self, values: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """float32 z-scores of ``values`` [n, C] (``groups``: each row's group; ignored when fitted pooled)."""
        g = np.zeros(len(values), np.int64) if groups is None or len(self.mean) == 1 else groups
        return ((values - self.mean[g]) / self.std[g]).astype(np.float32)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays to save with ``np.savez`` (see :meth:`from_arrays`)."""
        return {f"{prefix}.mean": self.mean, f"{prefix}.std": self.std}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> Standardizer:
        return cls(mean=arrays[f"{prefix}.mean"], std=arrays[f"{prefix}.std"])
