"""FiLM generator and the conditioning factory."""

import pytest
import torch

from dualhrq.errors import ConfigError
from dualhrq.models.conditioning import FiLMGenerator, RegimeConditioner, SymbolConditioner, build_conditioning

SIZES = dict(n_regime_features=3, n_symbols=4, l_layers=2, l_dim=8, hidden=16)


def test_untrained_film_generator_is_exactly_the_identity():
    gamma, beta = FiLMGenerator(context_dim=5, hidden=16, n_layers=3, d_model=8)(torch.randn(4, 5))
    assert gamma.shape == beta.shape == (4, 3, 8)
    assert torch.equal(gamma, torch.ones_like(gamma)) and torch.equal(beta, torch.zeros_like(beta))


@pytest.mark.parametrize(("kind", "cls"), [("regime", RegimeConditioner), ("puzzle_id", SymbolConditioner)])
def test_factory_builds_conditioners_that_can_learn(kind, cls):
    cond = build_conditioning(kind, **SIZES)
    assert isinstance(cond, cls)
    gamma, beta = cond(torch.randn(5, 3), torch.tensor([0, 1, 2, 3, 0]))
    assert gamma.shape == beta.shape == (5, 2, 8)
    (gamma.square().sum() + beta.sum()).backward()
    # Zero output layer but non-zero inputs to it: it gets a gradient, so it leaves the identity.
    assert cond.film.net[-1].weight.grad.abs().sum() > 0


def test_none_builds_nothing():
    assert build_conditioning("none", **SIZES) is None


def test_regime_rag_is_not_available_yet():
    with pytest.raises(ConfigError, match="model.conditioning=regime_rag") as err:
        build_conditioning("regime_rag", **SIZES)
    assert "not available yet" in str(err.value)
    assert all(k in str(err.value) for k in ("'none'", "'puzzle_id'", "'regime'"))


def test_unknown_kind_lists_the_valid_values():
    with pytest.raises(ConfigError, match=r"model\.conditioning must be one of \['none', 'puzzle_id', 'regime'\]"):
        build_conditioning("regim", **SIZES)
