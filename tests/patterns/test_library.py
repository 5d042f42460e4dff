"""Pattern library: the point-in-time guard, exact search against brute force, lifecycle, persistence."""

import numpy as np
import pytest

from dualhrq.config import parse
from dualhrq.errors import ConfigError, DataError
from dualhrq.patterns import lifecycle
from dualhrq.patterns.index import IndexConfig
from dualhrq.patterns.library import LibraryConfig, PatternLibrary

DAY = 86_400_000_000  # microseconds
DIM, SCALES = 4, 2


def random_library(n=300, seed=0, kind="flat", **cfg):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, SCALES, DIM)).astype(np.float32)
    t = np.arange(n, dtype=np.int64) * DAY
    outcome = rng.normal(size=n).astype(np.float32)
    lib = PatternLibrary.build(LibraryConfig(codebook=8, index=IndexConfig(kind=kind), **cfg), emb, t, t + 2 * DAY,
                               outcome, chunk=64)
    return lib, emb, t


def brute_force(lib, q, t, k):
    """The k nearest patterns whose outcome ended before t, by direct distance computation."""
    ok = np.flatnonzero(lib.outcome_end < t)
    d = ((lib.embedding[ok] - q) ** 2).sum(axis=1)
    return ok[np.argsort(d, kind="stable")[:k]]


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_a_planted_pattern_whose_outcome_ends_at_or_after_t_is_never_returned(kind):
    lib, _, _ = random_library(kind=kind)
    query = np.full((1, DIM), 7.0, np.float32)  # far from every random pattern
    t = np.int64(150 * DAY)
    # plant three exact copies of the query: outcome ending after t, exactly at t, and before t
    planted = np.repeat(query[:, None, :], 3, axis=0).reshape(3, 1, DIM)
    lib.embedding = np.concatenate([lib.embedding, planted[:, 0]])
    for name, values in {"time": [t - DAY, t - DAY, t - 3 * DAY], "outcome_end": [t + DAY, t, t - DAY],
                         "scale": [0, 0, 0], "outcome": [1.0, 1.0, 1.0], "quality": [0.5] * 3, "uses": [0] * 3,
                         "code": [0] * 3, "uid": [10**6, 10**6 + 1, 10**6 + 2]}.items():
        setattr(lib, name, np.concatenate([getattr(lib, name), np.asarray(values, getattr(lib, name).dtype)]))
    lib._keep(np.argsort(lib.outcome_end, kind="stable"))
    lib.reindex()
    after = int(np.flatnonzero((lib.outcome_end == t + DAY) & (lib.embedding[:, 0] == 7.0))[0])
    at = int(np.flatnonzero((lib.outcome_end == t) & (lib.embedding[:, 0] == 7.0))[0])
    before = int(np.flatnonzero((lib.outcome_end == t - DAY) & (lib.embedding[:, 0] == 7.0))[0])
    ids, dist = lib.search(query, np.array([t]), k=5)
    assert after not in ids and at not in ids
    assert ids[0, 0] == before and dist[0, 0] == pytest.approx(0.0)
    assert (lib.outcome_end[ids[ids >= 0]] < t).all()
    # a decision one microsecond after the outcome ended may see it
    ids, _ = lib.search(query, np.array([t + DAY + 1]), k=3)
    assert {after, at, before} <= set(ids[0].tolist())


def test_exact_search_equals_brute_force_within_the_admissible_range():
    lib, emb, t = random_library()
    q = emb[200:260, 0]
    t_q = t[200:260]
    ids, _ = lib.search(q, t_q, k=6)
    for i in range(len(q)):
        np.testing.assert_array_equal(ids[i], brute_force(lib, q[i], t_q[i], 6))


def test_early_decisions_get_fewer_neighbours_not_future_ones():
    lib, emb, t = random_library()
    # at day 4 only the decisions of days 0..1 have outcomes (t1 = t + 2 days) that ended: 2 x SCALES patterns
    ids, dist = lib.search(emb[4, 0][None], np.array([t[4]]), k=8)
    assert (ids[0] >= 0).sum() == 2 * SCALES
    assert (ids[0, 2 * SCALES:] == -1).all() and np.isinf(dist[0, 2 * SCALES:]).all()
    ids, _ = lib.search(emb[0, 0][None], np.array([t[0]]), k=8)
    assert (ids == -1).all()


def test_max_age_excludes_old_patterns():
    lib, emb, t = random_library(max_age_days=10.0)
    t_q = np.full(20, t[250])
    ids, _ = lib.search(emb[250:270, 0], t_q, k=8)
    found = lib.outcome_end[ids[ids >= 0]]
    assert (found < t[250]).all() and (found >= t[250] - 10 * DAY).all()


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_recall_the_exact_neighbours(kind):
    lib, emb, _ = random_library(n=2000, kind=kind)
    q = emb[1500:1600, 1]
    _, got = lib.index.search(q, 10)  # the raw index, without the library's exact fallback
    d = ((q[:, None, :] - lib.embedding[None, :, :]) ** 2).sum(axis=2)
    truth = np.argsort(d, axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, truth, strict=True)])
    assert recall >= 0.9


def test_tokens_carry_embedding_outcome_scale_distance_and_age():
    lib, emb, t = random_library()
    ids, dist = lib.search(emb[100:101, 0], t[100:101], k=3)
    tok = lib.tokens(ids, dist, t[100:101])
    j = ids[0, 0]
    assert tok.shape == (1, 3, DIM + SCALES + 3)
    np.testing.assert_allclose(tok[0, 0, :DIM], lib.embedding[j])
    assert tok[0, 0, DIM] == pytest.approx(lib.outcome[j])
    assert tok[0, 0, DIM + 1 : DIM + 1 + SCALES].tolist() == np.eye(SCALES)[lib.scale[j]].tolist()
    assert tok[0, 0, -2] == pytest.approx(np.sqrt(dist[0, 0]), rel=1e-5)
    assert tok[0, 0, -1] == pytest.approx(np.log1p((t[100] - lib.time[j]) / DAY))
    empty = lib.tokens(np.full((1, 2), -1), np.full((1, 2), np.inf, np.float32), t[:1])
    assert not empty.any()


def test_quality_is_an_exponentially_weighted_hit_rate():
    quality = np.full(3, lifecycle.PRIOR_QUALITY, np.float32)
    uses = np.zeros(3, np.int32)
    outcome = np.array([1.0, -1.0, 2.0], np.float32)
    # halflife 1: alpha = 1/2. Pattern 0 agrees with the query (+), pattern 1 does not, pattern 2 agrees twice.
    lifecycle.score_neighbours(quality, uses, np.array([[0, 1, 2], [2, -1, -1]]), outcome, np.array([0.5, 3.0]), 1.0)
    np.testing.assert_allclose(quality, [0.75, 0.25, 0.875])
    assert uses.tolist() == [1, 1, 2]


def test_eviction_keeps_the_best_patterns_and_counts():
    drop = lifecycle.eviction_mask(np.array([0.9, 0.1, 0.5, 0.1]), np.array([0, 5, 2, 1]), capacity=2)
    assert drop.tolist() == [False, True, False, True]
    lib, _, _ = random_library(n=300, max_size=100)
    assert len(lib) == 100
    assert lib.counts["added"] == 300 * SCALES and lib.counts["evicted"] == 300 * SCALES - 100
    assert np.all(np.diff(lib.outcome_end) >= 0)  # the sorted order the point-in-time guard relies on


def test_expiry_by_age():
    t = np.arange(50, dtype=np.int64) * DAY
    lib = PatternLibrary.build(LibraryConfig(codebook=4, max_age_days=5.0), np.zeros((50, 1, DIM), np.float32),
                               t, t + 2 * DAY, np.ones(50, np.float32))
    # the replay ends at day 49; outcomes end on days 2..51, and those before day 44 (decisions 0..41) expire
    assert len(lib) == 8 and lib.counts["expired"] == 42
    assert lib.outcome_end.min() == 44 * DAY
    # three days later the cut-off is day 47: outcomes ending on days 44, 45, 46 go
    assert lib.expire(np.int64(52 * DAY)) == 3
    assert lib.outcome_end.min() == 47 * DAY


def test_save_and_load_give_the_same_search(tmp_path):
    lib, emb, t = random_library(kind="ivf")
    lib.save(tmp_path / "lib")
    back = PatternLibrary.load(tmp_path / "lib")
    a = lib.search(emb[200:230, 1], t[200:230])
    b = back.search(emb[200:230, 1], t[200:230])
    np.testing.assert_array_equal(a[0], b[0])
    assert back.stats() == lib.stats()


def test_bad_inputs_are_refused():
    with pytest.raises(ConfigError, match=r"^kind must be one of \['auto', 'flat', 'ivf', 'hnsw'\], got 'annoy'"):
        IndexConfig(kind="annoy")
    with pytest.raises(ConfigError, match=r"^max_age_days must be a positive number or null, got 0\."):
        LibraryConfig(max_age_days=0)
    with pytest.raises(ConfigError, match=r"^model\.cond\.patterns\.library\.index\.kind must be one of"):
        parse(LibraryConfig, {"index": {"kind": "annoy"}}, "model.cond.patterns.library")
    with pytest.raises(ConfigError, match=r"^index\.nprobe must be a positive integer, got 0\."):
        LibraryConfig(index={"nprobe": 0})  # as read back from library.json
    t = np.arange(3, dtype=np.int64)
    with pytest.raises(DataError, match="outcome must end after"):
        PatternLibrary.build(LibraryConfig(), np.zeros((3, 1, 2), np.float32), t, t, np.zeros(3, np.float32))


def _three_decisions(query_end: int) -> PatternLibrary:
    """Patterns P (day 0) and Q (day 1) are in the library when decision R (day 20, outcome +1, next to P)
    queries it; R's outcome ends on ``query_end``; one more decision at day 30 closes the replay."""
    emb = np.array([[[0.0] * DIM], [[5.0] * DIM], [[0.1] * DIM], [[9.0] * DIM]], np.float32)
    t = np.array([0, 1, 20, 30], np.int64) * DAY
    end = np.array([10, 11, query_end, 31], np.int64) * DAY
    cfg = LibraryConfig(k=1, codebook=2, quality_halflife=1.0)
    return PatternLibrary.build(cfg, emb, t, end, np.array([1.0, 1.0, 1.0, -1.0], np.float32), chunk=1)


def test_a_vote_counts_only_once_the_voters_outcome_has_ended():
    # R agrees with its neighbour P. Known by day 25, before the replay's last decision (day 30): P scores
    # 0.5 + 1/2 * (1 - 0.5) = 0.75. Known only on day 40: P keeps its prior 0.5 and is unused.
    def p_quality(lib):
        p = np.flatnonzero(lib.time == 0)[0]
        return float(lib.quality[p]), int(lib.uses[p])

    assert p_quality(_three_decisions(query_end=25)) == (0.75, 1)
    assert p_quality(_three_decisions(query_end=40)) == (lifecycle.PRIOR_QUALITY, 0)


def test_eviction_uses_only_outcomes_known_when_it_evicts():
    # Capacity 2. R (outcome known day 40) agrees with P; the day-30 decision's pattern S joins on day 31,
    # evicting one of P, Q at the next decision. With R's vote unknown there, P and Q tie at 0.5 and the
    # older, P, goes; counting R's future vote would keep P and evict Q.
    emb = np.array([[[0.0] * DIM], [[5.0] * DIM], [[0.1] * DIM], [[9.0] * DIM], [[9.5] * DIM]], np.float32)
    t = np.array([0, 1, 20, 30, 35], np.int64) * DAY
    end = np.array([10, 11, 40, 31, 36], np.int64) * DAY
    cfg = LibraryConfig(k=1, codebook=2, max_size=2, quality_halflife=1.0)
    lib = PatternLibrary.build(cfg, emb, t, end, np.array([1.0, 1.0, 1.0, 1.0, 1.0], np.float32), chunk=1)
    assert 0 not in lib.time[lib.time < 20 * DAY] and 1 * DAY in lib.time
