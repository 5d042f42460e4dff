"""FAISS indexes for pattern embeddings: exact (flat) for small libraries, IVF or HNSW for large ones.

* ``flat``: exact L2 search (``IndexFlatL2``).
* ``ivf``: inverted lists over the VQ codebook's cells (Jegou et al. 2011,
  ``IndexIVFFlat``), searching the ``nprobe`` nearest cells.
* ``hnsw``: hierarchical navigable small-world graph (Malkov & Yashunin 2018,
  ``IndexHNSWFlat``) with ``M`` links per node, searching with ``ef_search``.
* ``auto``: flat up to ``exact_max`` patterns, HNSW above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import faiss
import numpy as np

from dualhrq.config import PositiveInt, check_fields, one_of

INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")


@dataclass(frozen=True)
class IndexConfig:
    """``model.cond.patterns.library.index``: the kind and its search settings."""

    kind: Annotated[str, one_of(INDEX_KINDS)] = "auto"
    exact_max: PositiveInt = 50_000
    nprobe: PositiveInt = 8
    hnsw_m: PositiveInt = 32
    ef_construction: PositiveInt = 80
    ef_search: PositiveInt = 64

    def __post_init__(self) -> None:
        check_fields(self)

    def resolve(self, n: int) -> str:
        """The concrete kind for a library of ``n`` patterns."""
        if self.kind != "auto":
            return self.kind
        return "flat" if n <= self.exact_max else "hnsw"


def build_index(embeddings: np.ndarray, cfg: IndexConfig, centroids: np.ndarray | None = None) -> faiss.Index:
    """An index holding ``embeddings`` [n, dim] with ids 0..n-1; ``ivf`` needs the codebook ``centroids``."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    dim = x.shape[1]
    kind = cfg.resolve(len(x))
    if kind == "flat":
        index = faiss.IndexFlatL2(dim)
    elif kind == "ivf":
        if centroids is None:
            raise ValueError("an IVF index needs the codebook centroids as its coarse quantiser")
        quantizer = faiss.IndexFlatL2(dim)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
        index = faiss.IndexIVFFlat(quantizer, dim, len(centroids))
        index.is_trained = True  # the codebook is the trained coarse quantiser
        index.nprobe = min(cfg.nprobe, len(centroids))
    else:
        index = faiss.IndexHNSWFlat(dim, cfg.hnsw_m)
        index.hnsw.efConstruction = cfg.ef_construction
        index.hnsw.efSearch = cfg.ef_search
    if len(x):
        index.add(x)
    return index


def set_search_params(index: faiss.Index, cfg: IndexConfig) -> faiss.Index:
    """Apply ``nprobe`` / ``ef_search`` to an index read back with ``faiss.read_index`` (already its concrete
    type; they are not all stored)."""
    if isinstance(index, faiss.IndexIVF):
        index.nprobe = min(cfg.nprobe, index.nlist)
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = cfg.ef_search
    return index
