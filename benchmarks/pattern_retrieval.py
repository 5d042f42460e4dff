"""Pattern retrieval latency and recall per index type at 10k, 100k and 1M stored patterns.

Embeddings are 16-dimensional (model.conditioning.patterns.dim) draws from a mixture
of 256 Gaussian clusters (pattern embeddings cluster, as the VQ codebook
shows); queries are fresh draws from the same mixture. Per size and index
kind: build time, single-query latency p50/p99 over ``--queries`` queries,
and recall@10 against exact search, both for the raw index and for the
library's point-in-time search (over-fetch, range filter, exact fallback),
queried at a time after every outcome (the live case). IVF uses
4 * sqrt(n) lists (the VQ codebook) with nprobe 16; HNSW M=32, efConstruction
80, efSearch 64. Prints one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/pattern_retrieval.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import faiss
import numpy as np

from dualhrq.patterns.codebook import fit_codebook
from dualhrq.patterns.index import IndexConfig, build_index
from dualhrq.patterns.library import LibraryConfig, PatternLibrary

DIM, K = 16, 10


def mixture(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    return (centres[rng.integers(0, len(centres), n)] + 0.5 * rng.normal(size=(n, DIM))).astype(np.float32)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(float(np.percentile(samples_ms, 50)), 4),
            "p99_ms": round(float(np.percentile(samples_ms, 99)), 4)}


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, truth, strict=True)]))


def run_size(n: int, n_queries: int, rng: np.random.Generator) -> dict:
    centres = 3.0 * rng.normal(size=(256, DIM))
    x, q = mixture(n, rng, centres), mixture(n_queries, rng, centres)
    _, truth = faiss.knn(q, x, K)
    n_lists = int(min(4 * np.sqrt(n), n // 39))  # faiss wants >= 39 training points per centroid
    start = time.perf_counter()
    centroids = fit_codebook(x, n_lists, seed=0)
    codebook_s = time.perf_counter() - start
    out = {"n": n, "codebook_lists": len(centroids), "codebook_s": round(codebook_s, 2)}
    for kind in ("flat", "ivf", "hnsw"):
        cfg = IndexConfig(kind=kind, nprobe=16, hnsw_m=32, ef_construction=80, ef_search=64)
        start = time.perf_counter()
        index = build_index(x, cfg, centroids)
        build_s = time.perf_counter() - start
        lat, found = [], []
        for i in range(n_queries):
            t0 = time.perf_counter()
            _, ids = index.search(q[i : i + 1], K)
            lat.append((time.perf_counter() - t0) * 1e3)
            found.append(ids[0])
        lib = PatternLibrary(LibraryConfig(k=K, index=cfg), DIM, 1)
        lib.embedding, lib.time = x, np.arange(n, dtype=np.int64)
        lib.outcome_end = lib.time + 1
        lib.index = index
        live = np.array([n + 1], np.int64)
        lib_lat, lib_found = [], []
        for i in range(n_queries):
            t0 = time.perf_counter()
            ids, _ = lib.search(q[i : i + 1], live)
            lib_lat.append((time.perf_counter() - t0) * 1e3)
            lib_found.append(ids[0])
        out[kind] = {"build_s": round(build_s, 2), **percentiles(lat), "recall_at_10": round(recall(found, truth), 4),
                     "library": {**percentiles(lib_lat), "recall_at_10": round(recall(lib_found, truth), 4)}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    results = [run_size(n, args.queries, rng) for n in args.sizes]
    print(json.dumps({"benchmark": "pattern_retrieval", "dim": DIM, "k": K, "queries": args.queries,
                      "faiss": faiss.__version__, "omp_threads": faiss.omp_get_max_threads(),
                      "cpu": platform.processor() or platform.machine(), "load_avg": os.getloadavg()[0],
                      "sizes": results}))


if __name__ == "__main__":
    main()
