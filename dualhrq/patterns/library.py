"""The pattern library: embeddings with point-in-time metadata behind a FAISS index.

Every pattern is a window (at one of the encoder's scales) ending at a
training decision bar, with its forward outcome: the standardised return over
(t, t1]. Metadata per pattern: decision ``time``, ``outcome_end`` (t1),
``scale``, ``outcome``, ``quality``, VQ ``code``.

Point in time: a search at decision time t only returns patterns whose
outcome window ended strictly before t (``outcome_end < t``), and, with a
``max_age``, no later than ``max_age`` before it. Patterns are kept sorted by
``outcome_end``, so the admissible set is an id range. Exact search (a
small library) computes distances to the range directly (a blocked matrix
product: at 16 dimensions faster than ``IndexFlatL2`` with the over-fetch);
IVF and HNSW are searched with over-fetching, out-of-range hits are dropped,
and a query left with too few neighbours is answered by exact search over
its range. Every returned id
passes the range check: this is the leakage guard of the retrieval path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from dualhrq.config import Positive, PositiveInt, check_fields, parse
from dualhrq.errors import DataError
from dualhrq.patterns import lifecycle
from dualhrq.patterns.codebook import assign_codes, code_perplexity, fit_codebook
from dualhrq.patterns.index import IndexConfig, build_index, set_search_params

_US_PER_DAY = 86_400 * 1_000_000
_EXACT_BLOCK = 4_000_000  # distance-matrix entries per block of the exact search
def token_width(dim: int, n_scales: int) -> int:
    """Width of a neighbour token (:meth:`PatternLibrary.tokens`): embedding, outcome, scale one-hot, distance,
    age."""
    return dim + n_scales + 3


_ARRAYS = ("embedding", "time", "outcome_end", "scale", "outcome", "quality", "uses", "code", "uid", "centroids")


@dataclass(frozen=True)
class LibraryConfig:
    """``model.cond.patterns.library``: ages in days, times in microseconds since the epoch."""

    k: PositiveInt = 8
    codebook: PositiveInt = 64
    max_size: PositiveInt = 200_000
    max_age_days: Positive | None = None
    quality_halflife: Positive = 20.0
    overfetch: PositiveInt = 8
    score_sample: PositiveInt = 128
    index: IndexConfig = field(default_factory=IndexConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.index, Mapping):  # as read back from library.json
            object.__setattr__(self, "index", parse(IndexConfig, self.index, "index"))
        check_fields(self)

    @property
    def max_age_us(self) -> np.int64 | None:
        return None if self.max_age_days is None else np.int64(self.max_age_days * _US_PER_DAY)


@dataclass
class _PendingVotes:
    """Neighbour votes of queries whose outcome has not ended yet: pattern uids [Q, k] (-1: none), each
    query's outcome and the time it ends."""

    k: int
    uids: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    outcome: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def add(self, uids: np.ndarray, outcome: np.ndarray, ends: np.ndarray) -> None:
        self.uids = np.concatenate([self.uids.reshape(-1, uids.shape[1]), uids])
        self.outcome = np.concatenate([self.outcome, outcome])
        self.ends = np.concatenate([self.ends, ends])

    def apply_known(self, lib: PatternLibrary, now: np.int64) -> None:
        """Score the votes whose query outcome ended before ``now``, in the order they became known."""
        due = self.ends < now
        if not due.any():
            return
        order = np.flatnonzero(due)[np.argsort(self.ends[due], kind="stable")]
        position = np.full(int(max(lib.uid.max(initial=-1), self.uids.max(initial=-1))) + 1, -1, np.int64)
        position[lib.uid] = np.arange(len(lib))
        uids = self.uids[order]
        neighbours = np.where(uids >= 0, position[np.maximum(uids, 0)], -1)  # evicted or expired: -1
        lifecycle.score_neighbours(lib.quality, lib.uses, neighbours, lib.outcome, self.outcome[order],
                                   lib.cfg.quality_halflife)
        self.uids, self.outcome, self.ends = self.uids[~due], self.outcome[~due], self.ends[~due]


class PatternLibrary:
    """Patterns sorted by ``outcome_end``; search is point in time (see the module docstring)."""

    def __init__(self, cfg: LibraryConfig, dim: int, n_scales: int) -> None:
        self.cfg = cfg
        self.dim, self.n_scales = dim, n_scales
        self.embedding = np.zeros((0, dim), np.float32)
        self.time = np.zeros(0, np.int64)
        self.outcome_end = np.zeros(0, np.int64)
        self.scale = np.zeros(0, np.int16)
        self.outcome = np.zeros(0, np.float32)
        self.quality = np.zeros(0, np.float32)
        self.uses = np.zeros(0, np.int32)
        self.code = np.zeros(0, np.int32)
        self.uid = np.zeros(0, np.int64)  # order of addition: a pattern's id however the arrays are reordered
        self.centroids = np.zeros((0, dim), np.float32)
        self.counts = {"added": 0, "expired": 0, "evicted": 0}
        self.index: faiss.Index | None = None

    def __len__(self) -> int:
        return len(self.time)

    # ---- building -------------------------------------------------------------------------------------------
    @classmethod
    def build(cls, cfg: LibraryConfig, embedding: np.ndarray, time: np.ndarray, outcome_end: np.ndarray,
              outcome: np.ndarray, chunk: int = 512) -> PatternLibrary:
        """Replay the training fold in time order: ``embedding`` [n, S, dim] of n decisions at ``time`` [n]
        (int64 us) with outcome ``outcome`` [n] known at ``outcome_end`` [n].

        Each chunk of decisions first queries the library as it stood (point in
        time); its own patterns join once their outcome has ended; the library is
        trimmed to ``max_size`` as it goes. A query's vote on the neighbours it got
        (:func:`lifecycle.score_neighbours`) waits until the query's own outcome
        has ended too, so no eviction uses an outcome that was not yet known. Up
        to ``score_sample`` decisions per chunk (a seeded random subset) vote,
        which bounds the cost of the replay.
        """
        n, n_scales, dim = embedding.shape
        if not (len(time) == len(outcome_end) == len(outcome) == n):
            raise DataError("pattern library: embedding, time, outcome_end and outcome must have one row per decision.")
        if np.any(outcome_end <= time):
            raise DataError("pattern library: every outcome must end after its decision time (t1 > t).")
        lib = cls(cfg, dim, n_scales)
        votes = _PendingVotes(k=cfg.k)
        rng = np.random.default_rng(cfg.seed)
        order = np.argsort(time, kind="stable")
        pending = np.argsort(outcome_end, kind="stable")  # decisions whose patterns may join, by availability
        joined = 0
        for lo in range(0, n, chunk):
            rows = order[lo : lo + chunk]
            t_now = time[rows[0]]
            upto = int(np.searchsorted(outcome_end[pending], t_now, side="left"))
            votes.apply_known(lib, t_now)
            if upto > joined:
                lib._append(embedding[pending[joined:upto]], time[pending[joined:upto]],
                            outcome_end[pending[joined:upto]], outcome[pending[joined:upto]])
                joined = upto
                lib._trim(t_now)
            if len(lib):
                scorers = rows if len(rows) <= cfg.score_sample else np.sort(
                    rng.choice(rows, cfg.score_sample, replace=False))
                ids, _ = lib._exact_search(embedding[scorers].reshape(-1, dim), np.repeat(time[scorers], n_scales))
                votes.add(lib.uid[ids] * (ids >= 0) - (ids < 0), np.repeat(outcome[scorers], n_scales),
                          np.repeat(outcome_end[scorers], n_scales))
        if joined < n:  # patterns whose outcome ends after the last decision: available to later (test) times
            rest = pending[joined:]
            lib._append(embedding[rest], time[rest], outcome_end[rest], outcome[rest])
        votes.apply_known(lib, time[order[-1]])
        lib._trim(time[order[-1]])
        lib.reindex()
        return lib

    def _append(self, embedding: np.ndarray, time: np.ndarray, outcome_end: np.ndarray, outcome: np.ndarray) -> None:
        """Add decisions' patterns (all scales each); keeps the arrays sorted by ``outcome_end``."""
        m, s, _ = embedding.shape
        self.embedding = np.concatenate([self.embedding, embedding.reshape(m * s, self.dim).astype(np.float32)])
        self.time = np.concatenate([self.time, np.repeat(time, s)])
        self.outcome_end = np.concatenate([self.outcome_end, np.repeat(outcome_end, s)])
        self.scale = np.concatenate([self.scale, np.tile(np.arange(s, dtype=np.int16), m)])
        self.outcome = np.concatenate([self.outcome, np.repeat(outcome, s).astype(np.float32)])
        self.quality = np.concatenate([self.quality, np.full(m * s, lifecycle.PRIOR_QUALITY, np.float32)])
        self.uses = np.concatenate([self.uses, np.zeros(m * s, np.int32)])
        self.code = np.concatenate([self.code, np.full(m * s, -1, np.int32)])
        self.uid = np.concatenate([self.uid, self.counts["added"] + np.arange(m * s, dtype=np.int64)])
        self.counts["added"] += m * s
        self._keep(np.argsort(self.outcome_end, kind="stable"))
        self.index = None

    def _trim(self, now: np.int64) -> None:
        """Expire patterns older than ``max_age`` at ``now``, then evict the worst beyond ``max_size``."""
        old = lifecycle.expired(self.outcome_end, now, self.cfg.max_age_us)
        self.counts["expired"] += int(old.sum())
        self._keep(np.flatnonzero(~old))
        drop = lifecycle.eviction_mask(self.quality, self.time, self.cfg.max_size)
        self.counts["evicted"] += int(drop.sum())
        self._keep(np.flatnonzero(~drop))

    def expire(self, now: np.int64) -> int:
        """Drop expired patterns at ``now`` and rebuild the index; returns how many went."""
        before = len(self)
        self._trim(now)
        self.reindex()
        return before - len(self)

    def _keep(self, idx: np.ndarray) -> None:
        for name in _ARRAYS[:-1]:
            setattr(self, name, getattr(self, name)[idx])
        self.index = None

    def reindex(self) -> None:
        """Fit the VQ codebook, code every pattern and build the configured FAISS index."""
        if len(self):
            self.centroids = fit_codebook(self.embedding, self.cfg.codebook, seed=self.cfg.seed)
            self.code = assign_codes(self.embedding, self.centroids)
        self.index = build_index(self.embedding, self.cfg.index, self.centroids)

    # ---- searching ------------------------------------------------------------------------------------------
    def admissible(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Id range [lo, hi) of the patterns a decision at each ``t`` may see."""
        hi = np.searchsorted(self.outcome_end, t, side="left")
        max_age = self.cfg.max_age_us
        lo = np.zeros_like(hi) if max_age is None else np.searchsorted(self.outcome_end, t - max_age, side="left")
        return lo, hi

    def search(self, queries: np.ndarray, t: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Ids [Q, k] (-1 where fewer are admissible) and squared L2 distances of the ``k`` nearest admissible
        patterns of ``queries`` [Q, dim] at decision times ``t`` [Q] (int64 us)."""
        k = k or self.cfg.k
        if self.index is None:
            self.reindex()
        q = np.ascontiguousarray(queries, dtype=np.float32)
        lo, hi = self.admissible(np.asarray(t, dtype=np.int64))
        ids = np.full((len(q), k), -1, np.int64)
        dist = np.full((len(q), k), np.inf, np.float32)
        if not len(self) or not len(q):
            return ids, dist
        if self.cfg.index.resolve(len(self)) == "flat":
            return self._exact_search(q, np.asarray(t), k)  # exact, and the range is applied directly
        fetch = min(len(self), k * self.cfg.overfetch)
        d_all, i_all = self.index.search(q, fetch)
        ok = (i_all >= lo[:, None]) & (i_all < hi[:, None])
        rank = np.cumsum(ok, axis=1) - 1
        take = ok & (rank < k)
        rows, cols = np.nonzero(take)
        ids[rows, rank[rows, cols]] = i_all[rows, cols]
        dist[rows, rank[rows, cols]] = d_all[rows, cols]
        short = np.flatnonzero(take.sum(axis=1) < np.minimum(k, hi - lo))
        if len(short):
            ids[short], dist[short] = self._exact_search(q[short], np.asarray(t)[short], k)
        return ids, dist

    def _exact_search(self, q: np.ndarray, t: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force search of each query within its own admissible range (one distance matrix per
        block of queries, inadmissible patterns masked)."""
        k = k or self.cfg.k
        lo, hi = self.admissible(np.asarray(t, dtype=np.int64))
        ids = np.full((len(q), k), -1, np.int64)
        dist = np.full((len(q), k), np.inf, np.float32)
        width = int(hi.max(initial=0))
        if width == 0:
            return ids, dist
        base = self.embedding[:width]
        base_sq = (base * base).sum(axis=1)
        cols = np.arange(width)
        step = max(1, _EXACT_BLOCK // width)
        for r in range(0, len(q), step):
            qb = q[r : r + step]
            d = qb @ base.T
            d *= -2.0
            d += base_sq[None, :]
            d += (qb * qb).sum(axis=1)[:, None]
            np.maximum(d, 0.0, out=d)
            for i in np.flatnonzero((lo[r : r + step] > 0) | (hi[r : r + step] < width)):
                d[i, : lo[r + i]] = np.inf
                d[i, hi[r + i] :] = np.inf
            kk = min(k, width)
            part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < width else np.tile(cols, (len(qb), 1))
            pd = np.take_along_axis(d, part, axis=1)
            order = np.argsort(pd, axis=1, kind="stable")
            part, pd = np.take_along_axis(part, order, axis=1), np.take_along_axis(pd, order, axis=1)
            found = np.isfinite(pd)
            ids[r : r + step, :kk] = np.where(found, part, -1)
            dist[r : r + step, :kk] = pd
        return ids, dist

    def tokens(self, ids: np.ndarray, dist: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Neighbour features [Q, k, dim + n_scales + 3]: embedding, outcome, scale one-hot, distance,
        log(1 + age in days); zeros where ``ids`` is -1."""
        valid = ids >= 0
        j = np.where(valid, ids, 0)
        age_days = (np.asarray(t, dtype=np.int64)[:, None] - self.time[j]) / _US_PER_DAY
        parts = [
            self.embedding[j],
            self.outcome[j][..., None],
            np.eye(self.n_scales, dtype=np.float32)[self.scale[j]],
            np.sqrt(np.where(valid, dist, 0.0))[..., None],
            np.log1p(np.clip(age_days, 0.0, None))[..., None],
        ]
        return np.where(valid[..., None], np.concatenate(parts, axis=-1), 0.0).astype(np.float32)

    @property
    def token_dim(self) -> int:
        return token_width(self.dim, self.n_scales)

    # ---- reporting and persistence ----------------------------------------------------------------------------
    def stats(self) -> dict[str, float]:
        """Sizes and lifecycle counts for logging (``patterns/...``)."""
        scored = self.uses > 0
        return {"size": float(len(self)), **{k: float(v) for k, v in self.counts.items()},
                "quality_mean": float(self.quality[scored].mean()) if scored.any() else lifecycle.PRIOR_QUALITY,
                "scored_share": float(scored.mean()) if len(self) else 0.0,
                "code_perplexity": code_perplexity(self.code, max(len(self.centroids), 1)) if len(self) else 0.0}

    def save(self, directory: str | Path) -> Path:
        """``index.faiss``, ``patterns.npz`` (plain arrays) and ``library.json`` under ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        if self.index is None:
            self.reindex()
        faiss.write_index(self.index, str(out / "index.faiss"))
        np.savez(out / "patterns.npz", **{name: getattr(self, name) for name in _ARRAYS})
        meta = {"config": asdict(self.cfg), "dim": self.dim, "n_scales": self.n_scales, "counts": self.counts}
        (out / "library.json").write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> PatternLibrary:
        """Read a library written by :meth:`save` (no pickles: plain arrays and JSON)."""
        path = Path(directory)
        meta = json.loads((path / "library.json").read_text())
        lib = cls(LibraryConfig(**meta["config"]), meta["dim"], meta["n_scales"])
        with np.load(path / "patterns.npz", allow_pickle=False) as arrays:
            for name in _ARRAYS:
                setattr(lib, name, arrays[name])
        lib.counts = meta["counts"]
        lib.index = set_search_params(faiss.read_index(str(path / "index.faiss")), lib.cfg.index)
        return lib
