"""FiLM generator, the conditioners the ``model/conditioning`` groups build, attention pooling of patterns and the
fused context."""

import math
from functools import partial

import pytest
import torch
from hydra.utils import instantiate

from dualhrq.config import compose_train
from dualhrq.errors import ConfigError
from dualhrq.models.conditioning import (
    FiLMGenerator,
    PatternBatch,
    PatternPooling,
    RegimeConditioner,
    RegimeRAGConditioner,
    SymbolConditioner,
)

from .conftest import conditioner

# what a network hands its conditioner factory: 2 FiLM layers of width 8
SIZES = dict(n_regime_features=3, n_symbols=4, hidden=16, n_layers=2, d_model=8)
N_REGIMES = 3
# one scale of 1-dimensional embeddings: neighbour tokens of width 1 + 1 + 3 = 5
FACTORIES = {
    "regime": partial(RegimeConditioner, n_regimes=N_REGIMES),
    "puzzle_id": partial(SymbolConditioner),
    "regime_rag": partial(RegimeRAGConditioner, n_regimes=N_REGIMES, pattern_dim=1, scales=(8,), pool_queries=2),
}


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
    cond = FACTORIES[kind](**SIZES)
    assert isinstance(cond, cls)
    gamma, beta = cond(torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0]), patterns())
    assert gamma.shape == beta.shape == (5, 2, 8)
    (gamma.square().sum() + beta.sum()).backward()
    # Zero output layer but non-zero inputs to it: it gets a gradient, so it leaves the identity.
    assert cond.film.net[-1].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(("kind", "cls"), [("regime", RegimeConditioner), ("puzzle_id", SymbolConditioner),
                                           ("regime_rag", RegimeRAGConditioner)])
def test_each_config_group_builds_its_conditioner(kind, cls):
    assert isinstance(conditioner(kind)(**SIZES), cls)


@pytest.mark.parametrize("kind", ["regime", "regime_rag"])
def test_regime_conditioners_give_logits_for_the_auxiliary_loss(kind):
    out = FACTORIES[kind](**SIZES).encode(torch.randn(5, 3), torch.zeros(5, dtype=torch.long), patterns())
    assert out.regime_logits.shape == (5, 3)


def test_none_builds_nothing():
    assert conditioner("none") is None


def test_attention_pooling_matches_a_hand_computation():
    torch.manual_seed(0)
    pool = PatternPooling(token_dim=5, dim=4, n_queries=2)
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
    cond = FACTORIES["regime_rag"](**SIZES)
    regime, symbol = torch.randn(5, 3), torch.zeros(5, dtype=torch.long)
    open_ = cond.encode(regime, symbol, None).context
    found = cond.encode(regime, symbol, patterns()).context
    r = N_REGIMES
    torch.testing.assert_close(open_[:, :r], found[:, :r])  # the regime part does not depend on retrieval
    assert torch.equal(open_[:, r:], torch.zeros_like(open_[:, r:]))  # no pattern context, flag 0
    assert (found[:, -1] == patterns().mask.any(dim=1).float()).all()


@pytest.mark.parametrize(("kind", "hidden", "fix"), [("regime", 320, "classifier"),
                                                      ("regime_rag", 200, "pooling head")])
def test_sub_budgets_of_the_design_are_enforced(kind, hidden, fix):
    # classifier: 3*320+320 + 320*320+320 + 320*3+3 = 105,283 > 100k;
    # pooling head at hidden 200 with tokens of width 596 + 1 + 3 = 600:
    # 600*200+200 + 2*200*200 + 2*200 = 200,600 > 100k
    factory = partial(FACTORIES[kind], pattern_dim=596) if kind == "regime_rag" else FACTORIES[kind]
    with pytest.raises(ConfigError, match=fix):
        factory(**{**SIZES, "hidden": hidden})


def test_token_width_follows_the_pattern_settings():
    cfg = compose_train(["model=hrm_tiny", "model/conditioning=regime_rag", "model.conditioning.patterns.scales=[8,16]",
                         "model.conditioning.patterns.dim=6"])
    cond = instantiate(cfg.model.conditioning.module)(**SIZES)
    assert cond.pooling.proj[0].in_features == 6 + 2 + 3  # embedding, outcome, scale one-hot, distance, age
    assert cond.pooling.queries.shape == (2, SIZES["hidden"])  # model.conditioning.module.pool_queries
    assert cond.classifier.net[-1].out_features == 4  # model.conditioning.regimes
