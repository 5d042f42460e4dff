"""Detect patterns: windows at several scales, reduced to one shape vector each, embedded by PCA.

A window of ``scale`` bars ending at a decision bar is cut into ``points``
equal blocks and each model input feature is averaged per block, so windows
of every scale become vectors of the same length (``points x features``) and
a short window can match a longer one of the same shape. PCA (Pearson 1901;
scikit-learn's implementation) fitted on the training fold's windows maps
them to ``dim`` coordinates. ``benchmarks/pattern_encoder.py`` measures it
against a small autoencoder trained on the same windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import PCA

from dualhrq.config import invalid, positive_int
from dualhrq.errors import ConfigError, DataError


def check_scales(scales: Sequence[int], points: int, seq_len: int | None = None) -> tuple[int, ...]:
    """Validated window scales: positive multiples of ``points``, ascending, at most ``seq_len`` (the
    input window). Config errors name ``scales`` and ``points``."""
    points = positive_int(points, "points")
    scales = tuple(scales)
    if not scales:
        raise ConfigError("scales is empty. Fix: list window lengths in bars, e.g. [8, 16, 32].", field="scales")
    for s in scales:
        positive_int(s, "scales")
        if s % points:
            raise ConfigError(f"scales: {s} is not a multiple of points={points}. Fix: use multiples of points.",
                              field="scales")
    if list(scales) != sorted(set(scales)):
        raise invalid("scales", list(scales), "distinct and ascending")
    if seq_len is not None and scales[-1] > seq_len:
        raise ConfigError(f"scales: {scales[-1]} bars is longer than the input window, seq_len={seq_len}. "
                          "Fix: lower the scale or raise seq_len.", field="scales")
    return scales


def window_shapes(features: np.ndarray, end_rows: np.ndarray, scale: int, points: int) -> np.ndarray:
    """Block means of the ``scale`` rows ending at each of ``end_rows``: [n, points * F], float32.

    ``features`` are the (standardised) feature rows; a window must not reach
    before row 0 (the samples' windows never do, being ``seq_len >= scale``).
    """
    if np.any(end_rows - scale + 1 < 0):
        raise DataError(f"pattern window of {scale} bars reaches before the first feature row.")
    offsets = np.arange(-scale + 1, 1)
    windows = features[end_rows[:, None] + offsets[None, :]]  # [n, scale, F]
    n, _, f = windows.shape
    blocks = windows.reshape(n, points, scale // points, f).mean(axis=2)
    return blocks.reshape(n, points * f).astype(np.float32)


class PatternEncoder:
    """Window shapes -> ``dim``-dimensional embeddings, fitted on training windows only."""

    def __init__(self, scales: Sequence[int], points: int, dim: int, seed: int = 0) -> None:
        self.scales = check_scales(scales, points)
        self.points = points
        self.dim = positive_int(dim, "dim")
        self.seed = seed
        self.pca: PCA | None = None

    def fit(self, features: np.ndarray, end_rows: np.ndarray, max_windows: int = 50_000) -> PatternEncoder:
        """Fit PCA on the windows of every scale ending at ``end_rows`` (training decision bars)."""
        shapes = np.concatenate([window_shapes(features, end_rows, s, self.points) for s in self.scales])
        if self.dim > min(shapes.shape):
            raise ConfigError(f"dim={self.dim} exceeds what {shapes.shape[0]} windows of {shapes.shape[1]} "
                              "values can span. Fix: lower it.", field="dim")
        if len(shapes) > max_windows:
            shapes = shapes[np.random.default_rng(self.seed).choice(len(shapes), max_windows, replace=False)]
        self.pca = PCA(n_components=self.dim, random_state=self.seed).fit(shapes)
        return self

    def embed(self, features: np.ndarray, end_rows: np.ndarray) -> np.ndarray:
        """Embeddings [n, n_scales, dim] (float32) of the windows ending at ``end_rows``."""
        if self.pca is None:
            raise RuntimeError("fit the PatternEncoder before embedding")
        out = [self.pca.transform(window_shapes(features, end_rows, s, self.points)) for s in self.scales]
        return np.stack(out, axis=1).astype(np.float32)

    _FITTED = ("components_", "mean_", "explained_variance_", "explained_variance_ratio_", "singular_values_")

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted PCA as plain arrays (``np.savez``; no pickles), with the encoder's settings."""
        if self.pca is None:
            raise RuntimeError("fit the PatternEncoder first")
        return {"scales": np.asarray(self.scales), "points": np.asarray(self.points), "dim": np.asarray(self.dim),
                "seed": np.asarray(self.seed), **{name: getattr(self.pca, name) for name in self._FITTED}}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PatternEncoder:
        """The encoder :meth:`arrays` described, embedding exactly as it did."""
        enc = cls([int(s) for s in arrays["scales"]], int(arrays["points"]), int(arrays["dim"]), int(arrays["seed"]))
        enc.pca = PCA(n_components=enc.dim, random_state=enc.seed)
        for name in cls._FITTED:
            setattr(enc.pca, name, arrays[name])
        enc.pca.n_components_ = enc.dim
        enc.pca.n_features_in_ = enc.pca.components_.shape[1]
        enc.pca.n_samples_ = 0
        enc.pca.noise_variance_ = 0.0
        return enc

    def explained_variance(self) -> float:
        """Share of the training windows' variance the embedding keeps."""
        if self.pca is None:
            raise RuntimeError("fit the PatternEncoder first")
        return float(self.pca.explained_variance_ratio_.sum())
