"""The mutual-information (leakage) gate's estimator against known values, and against the contexts of a
per-symbol and a regime conditioner."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dualhrq.errors import DataError
from dualhrq.models.conditioning import RegimeConditioner, SymbolConditioner
from dualhrq.validation.leakage import MI_LIMIT_BITS, mutual_information_bits


def test_gaussian_shift_matches_numerical_integration():
    # Y uniform on {0, 1}, X | Y ~ N(2Y - 1, 1): I = h(X) - h(X|Y), h(X) by quadrature of the mixture density
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    x = (2 * y - 1)[:, None] + rng.normal(size=(4000, 1))

    def density(v):
        return 0.5 * stats.norm.pdf(v, -1) + 0.5 * stats.norm.pdf(v, 1)

    h_x = -integrate.quad(lambda v: density(v) * np.log2(density(v)), -12, 12)[0]
    truth = h_x - 0.5 * np.log2(2 * np.pi * np.e)  # about 0.486 bits
    assert mutual_information_bits(x, y) == pytest.approx(truth, abs=0.04)


def test_independent_context_is_near_zero_even_for_small_samples_and_many_classes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 20))
    # uncorrected, the plug-in's bias here would be about 15 * 6 / (2 * 300 * ln 2) = 0.22 bits
    assert mutual_information_bits(x, rng.integers(0, 7, 300)) < 0.05
    assert mutual_information_bits(x, rng.integers(0, 2, 300)) < 0.05


def test_the_gate_tells_a_per_symbol_embedding_from_regime_conditioning():
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    n, n_symbols = 3000, 4
    symbol = torch.as_tensor(rng.integers(0, n_symbols, n))
    regime = torch.as_tensor(rng.normal(size=(n, 3)), dtype=torch.float32)  # market state, independent of symbol
    sizes = dict(n_regime_features=3, n_symbols=n_symbols, n_layers=2, d_model=8, hidden=16)
    with torch.no_grad():
        puzzle = SymbolConditioner(**sizes).encode(regime, symbol).context.numpy()
        market = RegimeConditioner(n_regimes=4, **sizes).encode(regime, symbol).context.numpy()
    mi_puzzle = mutual_information_bits(puzzle, symbol.numpy())
    mi_regime = mutual_information_bits(market, symbol.numpy())
    assert mi_puzzle == pytest.approx(np.log2(n_symbols), abs=0.05)  # H(symbol) = 2 bits: fails the gate
    assert mi_puzzle > MI_LIMIT_BITS > mi_regime


def test_bad_shapes_are_data_errors():
    with pytest.raises(DataError, match="one label per row"):
        mutual_information_bits(np.zeros((5, 2)), np.zeros(4))
    assert mutual_information_bits(np.zeros((10, 2)), np.arange(10) % 2) == 0.0  # a constant context says nothing
