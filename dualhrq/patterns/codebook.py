"""VQ codebook of pattern embeddings: k-means centroids (Lloyd 1982) trained with faiss."""

from __future__ import annotations

import faiss
import numpy as np

from dualhrq.config import positive_int


def fit_codebook(embeddings: np.ndarray, size: int, seed: int = 0, niter: int = 20) -> np.ndarray:
    """Centroids [min(size, n), dim] (float32) of ``embeddings`` [n, dim]."""
    size = positive_int(size, "size")
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    k = min(size, len(x))
    km = faiss.Kmeans(x.shape[1], k, niter=niter, seed=seed, verbose=False,
                      max_points_per_centroid=max(256, len(x) // k + 1))
    km.train(x)
    return km.centroids.copy()


def assign_codes(embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid of each embedding (int32)."""
    _, idx = faiss.knn(np.ascontiguousarray(embeddings, dtype=np.float32), centroids, 1)
    return idx[:, 0].astype(np.int32)


def code_perplexity(codes: np.ndarray, size: int) -> float:
    """exp(entropy) of the code histogram: how many codes are in effective use."""
    p = np.bincount(codes, minlength=size).astype(float)
    p = p[p > 0] / p.sum()
    return float(np.exp(-(p * np.log(p)).sum()))
