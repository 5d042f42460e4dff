"""The leakage gate's estimator, a cross-validated classifier's lower bound on I(x; y), against known values:
no information, full information, a Gaussian shift with an MI known by quadrature, and the contexts of a
per-symbol and a regime conditioner."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dualhrq.errors import DataError
from dualhrq.models.conditioning import RegimeConditioner, SymbolConditioner
from dualhrq.validation.leakage import MI_LIMIT_BITS, information_bound, mutual_information_bits, symbol_screen

DAY = np.timedelta64(1, "D")


def days(n: int, per_day: int = 1) -> np.ndarray:
    """Dates of ``n`` rows, ``per_day`` rows (one per symbol) on each."""
    return np.datetime64("2000-01-03") + (np.arange(n) // per_day) * DAY


def entropy_bits(y: np.ndarray) -> float:
    p = np.bincount(y) / len(y)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_gaussian_shift_is_bounded_tightly_from_below():
    # Y uniform on {0, 1}, X | Y ~ N(2Y - 1, 1): I = h(X) - h(X|Y), h(X) by quadrature of the mixture density
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    x = (2 * y - 1)[:, None] + rng.normal(size=(5000, 1))

    def density(v):
        return 0.5 * stats.norm.pdf(v, -1) + 0.5 * stats.norm.pdf(v, 1)

    h_x = -integrate.quad(lambda v: density(v) * np.log2(density(v)), -12, 12)[0]
    truth = h_x - 0.5 * np.log2(2 * np.pi * np.e)  # about 0.486 bits
    assert truth - 0.06 < mutual_information_bits(x, y, days(5000)) < truth + 0.02


@pytest.mark.parametrize("n_classes", [2, 7])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_inputs_independent_of_the_labels_give_about_zero_never_a_large_positive(n_classes, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(600, 20))  # many columns, few rows: a classifier overfits, it must not score
    bound = information_bound(x, rng.integers(0, n_classes, 600), days(600, 2))
    assert bound.bits < 0.02
    assert bound.cross_entropy_bits > bound.entropy_bits - 0.02


@pytest.mark.parametrize("n_classes", [2, 4])
def test_inputs_that_reveal_the_label_give_its_entropy(n_classes):
    rng = np.random.default_rng(4)
    y = rng.integers(0, n_classes, 3000)
    x = np.column_stack([y + 0.01 * rng.normal(size=3000), rng.normal(size=3000)])
    bound = information_bound(x, y, days(3000, n_classes))
    assert bound.entropy_bits == pytest.approx(entropy_bits(y), abs=1e-12)
    # short of it by the regularised trees' residual doubt and the 1% uniform share (log2(1 / 0.99) = 0.0145 bits)
    assert 0.95 * entropy_bits(y) <= bound.bits <= entropy_bits(y)


def test_information_shared_by_columns_is_seen_jointly_and_knockout_names_the_telling_column():
    # symbol 0: x1 = x0, symbol 1: x1 = -x0; each column alone is N(0, 1) for both symbols
    rng = np.random.default_rng(5)
    y = np.tile([0, 1], 1500)
    x0 = rng.normal(size=3000)
    x = np.column_stack([x0, np.where(y == 0, x0, -x0) + 0.05 * rng.normal(size=3000), rng.normal(size=3000)])
    t = days(3000, 2)
    assert mutual_information_bits(x[:, [0]], y, t) < 0.02 and mutual_information_bits(x[:, [1]], y, t) < 0.02
    bound = information_bound(x, y, t, knockout=[np.array([0]), np.array([1]), np.array([2])])
    assert bound.bits > 0.8
    assert bound.knockout_bits[2] < 0.02 < 0.5 < min(bound.knockout_bits[:2])


def test_rows_of_one_date_stay_in_one_block():
    # every date holds one row of each symbol with the same value: no column tells them apart, though the value
    # identifies the date; a split that separated a date's rows would still score nothing, but a thinned sample
    # that kept one symbol's row on some dates and the other's on others would let the date tell the symbol
    rng = np.random.default_rng(6)
    value = np.repeat(np.cumsum(rng.normal(size=4000)), 2)[:, None]  # a random walk: nearby dates alike
    y = np.tile([0, 1], 4000)
    assert mutual_information_bits(value, y, days(8000, 2), max_samples=3000) < 0.02


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
    t = days(n)
    mi_puzzle = mutual_information_bits(puzzle, symbol.numpy(), t)
    mi_regime = mutual_information_bits(market, symbol.numpy(), t)
    assert mi_puzzle == pytest.approx(entropy_bits(symbol.numpy()), abs=0.02)  # about 2 bits: fails the gate
    assert mi_puzzle > MI_LIMIT_BITS > mi_regime


def test_bad_inputs_are_data_errors():
    t = days(10)
    with pytest.raises(DataError, match="one label and one time per row"):
        mutual_information_bits(np.zeros((5, 2)), np.zeros(4), t[:5])
    with pytest.raises(DataError, match="non-finite"):
        mutual_information_bits(np.full((10, 1), np.nan), np.arange(10) % 2, t)
    with pytest.raises(DataError, match="3 distinct dates cannot make 5 time blocks"):
        mutual_information_bits(np.arange(12.0)[:, None], np.arange(12) % 2, days(12, 4))
    assert mutual_information_bits(np.zeros((10, 2)), np.arange(10) % 2, t) == 0.0  # a constant x says nothing
    assert mutual_information_bits(np.arange(10.0)[:, None], np.zeros(10), t) == 0.0  # one label: nothing to say


def test_the_screen_drops_one_of_two_columns_that_tell_the_symbol_together():
    # the two columns of the joint test above plus a harmless one: the screen keeps the harmless column and
    # one of the pair, and the data (not a seed) decide which
    rng = np.random.default_rng(7)
    y = np.tile([0, 1], 1500)
    x0 = rng.normal(size=3000)
    x = np.column_stack([x0, np.where(y == 0, x0, -x0) + 0.05 * rng.normal(size=3000), rng.normal(size=3000)])
    groups = [np.array([j]) for j in range(3)]
    keep = symbol_screen(x, y, days(3000, 2), groups, MI_LIMIT_BITS)
    assert keep.sum() == 2 and keep[2]
    assert mutual_information_bits(x[:, keep], y, days(3000, 2)) <= MI_LIMIT_BITS
    assert (symbol_screen(x, y, days(3000, 2), groups, 1.5) == [True, True, True]).all()  # above H(Y): keep all
