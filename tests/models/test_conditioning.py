"""FiLM generator, the conditioning factory, attention pooling of patterns and the fused context."""

import math

import pytest
import torch

from dualhrq.errors import ConfigError
from dualhrq.models.conditioning import (
    FiLMGenerator,
    PatternBatch,
    PatternRetrieval,
    RegimeConditioner,
    RegimeRAGConditioner,
    SymbolConditioner,
    build_conditioning,
)
from dualhrq.models.conditioning.config import CondConfig

SIZES = dict(n_regime_features=3, n_symbols=4, l_layers=2, l_dim=8, hidden=16, n_regimes=3, pattern_token_dim=5,
             pool_queries=2)


def patterns(b=5, n=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return PatternBatch(tokens=torch.randn(b, n, d, generator=g), mask=torch.rand(b, n, generator=g) > 0.3)


def test_untrained_film_generator_is_exactly_the_identity():
    gamma, beta = FiLMGenerator(context_dim=5, hidden=16, n_layers=3, d_model=8)(torch.randn(4, 5))
    assert gamma.shape == beta.shape == (4, 3, 8)
    assert torch.equal(gamma, torch.ones_like(gamma)) and torch.equal(beta, torch.zeros_like(beta))


@pytest.mark.parametrize(("kind", "cls"), [("regime", RegimeConditioner), ("puzzle_id", SymbolConditioner),
                                           ("regime_rag", RegimeRAGConditioner)])
def test_factory_builds_conditioners_that_can_learn(kind, cls):
    cond = build_conditioning(kind, **SIZES)
    assert isinstance(cond, cls)
    gamma, beta = cond(torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0]), patterns())
    assert gamma.shape == beta.shape == (5, 2, 8)
    (gamma.square().sum() + beta.sum()).backward()
    # Zero output layer but non-zero inputs to it: it gets a gradient, so it leaves the identity.
    assert cond.film.net[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["regime", "regime_rag"])
def test_regime_conditioners_give_logits_for_the_auxiliary_loss(kind):
    out = build_conditioning(kind, **SIZES).encode(torch.randn(5, 3), torch.zeros(5, dtype=torch.long), patterns())
    assert out.regime_logits.shape == (5, 3)


def test_none_builds_nothing():
    assert build_conditioning("none", **SIZES) is None


def test_unknown_kind_lists_the_valid_values():
    with pytest.raises(ConfigError, match=r"must be one of \['none', 'puzzle_id', 'regime', 'regime_rag'\]"):
        build_conditioning("regim", **SIZES)


def test_attention_pooling_matches_a_hand_computation():
    torch.manual_seed(0)
    pool = PatternRetrieval(token_dim=5, dim=4, n_queries=2)
    batch = patterns(b=3, n=6)
    batch.mask[2] = False  # a sample without any admissible neighbour
    out = pool(batch)
    assert out.shape == (3, 2, 4)
    for b in range(2):
        h = pool.proj(batch.tokens[b][batch.mask[b]])
        k, v = pool.key(h), pool.value(h)
        for p in range(2):
            w = torch.softmax(k @ pool.queries[p] / math.sqrt(4), dim=0)
            torch.testing.assert_close(out[b, p], w @ v)
    assert torch.equal(out[2], torch.zeros(2, 4))
    # a set: permuting the neighbours changes nothing
    perm = torch.randperm(6)
    permuted = pool(PatternBatch(batch.tokens[:, perm], batch.mask[:, perm]))
    torch.testing.assert_close(permuted, out)


def test_failed_open_retrieval_gives_regime_only_context():
    cond = build_conditioning("regime_rag", **SIZES)
    regime, symbol = torch.randn(5, 3), torch.zeros(5, dtype=torch.long)
    open_ = cond.encode(regime, symbol, None).context
    found = cond.encode(regime, symbol, patterns()).context
    r = SIZES["n_regimes"]
    torch.testing.assert_close(open_[:, :r], found[:, :r])  # the regime part does not depend on retrieval
    assert torch.equal(open_[:, r:], torch.zeros_like(open_[:, r:]))  # no pattern context, flag 0
    assert (found[:, -1] == patterns().mask.any(dim=1).float()).all()


@pytest.mark.parametrize(("kind", "hidden", "fix"), [("regime", 320, "classifier"),
                                                      ("regime_rag", 200, "retrieval head")])
def test_sub_budgets_of_the_design_are_enforced(kind, hidden, fix):
    # classifier: 3*320+320 + 320*320+320 + 320*3+3 = 105,283 > 100k;
    # retrieval head at hidden 200: 600*200+200 + 2*200*200 + 2*200 = 200,600 > 100k
    with pytest.raises(ConfigError, match=fix):
        build_conditioning(kind, **{**SIZES, "hidden": hidden, "pattern_token_dim": 600})


@pytest.mark.parametrize(("cond", "match"), [
    ({"regimes": 1}, r"model\.cond\.regimes"),
    ({"regime": 4}, r"model\.cond: unknown keys \['regime'\]"),
    ({"patterns": {"scales": [8, 12]}}, r"model\.cond\.patterns\.scales"),
    ({"patterns": {"library": {"index": {"kind": "lsh"}}}}, r"model\.cond\.patterns\.library\.index\.kind"),
    ({"labels": {"covariance": "full_rank"}}, r"model\.cond\.labels\.covariance"),
    ({"retrieval": {"timeout_ms": 0}}, r"model\.cond\.retrieval\.timeout_ms"),
])
def test_bad_conditioning_settings_are_config_errors(cond, match):
    with pytest.raises(ConfigError, match=match):
        CondConfig.from_config(cond)


def test_token_width_follows_the_pattern_settings():
    cfg = CondConfig.from_config({"patterns": {"scales": [8, 16], "dim": 6}})
    assert cfg.net_sizes() == {"n_regimes": 4, "pattern_token_dim": 6 + 2 + 3, "pool_queries": 2}
