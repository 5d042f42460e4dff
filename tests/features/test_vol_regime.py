"""The Markov-switching volatility regime on series with known hidden states."""

from __future__ import annotations

import numpy as np
import pytest

from dualhrq.errors import DataError
from dualhrq.features.vol_regime import markov_volatility_regime


def two_state_series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Log variances: calm N(-1, 0.4^2) and stressed N(1, 0.6^2) blocks, a sticky Markov chain."""
    rng = np.random.default_rng(seed)
    state = np.zeros(n, dtype=int)
    for i in range(1, n):
        state[i] = state[i - 1] if rng.random() < 0.95 else 1 - state[i - 1]
    x = np.where(state == 1, rng.normal(1.0, 0.6, n), rng.normal(-1.0, 0.4, n))
    return x, state


def test_filtered_probability_tracks_the_hidden_state() -> None:
    x, state = two_state_series(600, seed=1)
    prob = markov_volatility_regime(x, fit_n=200)
    assert np.isnan(prob[:200]).all() and ((prob[200:] >= 0) & (prob[200:] <= 1)).all()
    assert ((prob[200:] > 0.5) == (state[200:] == 1)).mean() > 0.93


def test_the_high_state_is_the_high_variance_state_whatever_the_label_order() -> None:
    x, state = two_state_series(400, seed=2)
    flipped = markov_volatility_regime(-x, fit_n=150)  # now the calm blocks have the high mean
    assert ((flipped[150:] > 0.5) == (state[150:] == 0)).mean() > 0.9


def test_values_depend_only_on_the_past() -> None:
    x, _ = two_state_series(300, seed=3)
    base = markov_volatility_regime(x, fit_n=100)
    changed = x.copy()
    changed[220:] = np.random.default_rng(0).normal(3.0, 1.0, 80)
    after = markov_volatility_regime(changed, fit_n=100)
    np.testing.assert_array_equal(after[:220], base[:220])
    assert not np.allclose(after[220:], base[220:])


@pytest.mark.parametrize("x,fit_n,message", [
    (np.zeros(50), 10, "20 <= fit_n"),
    (np.r_[np.zeros(30), np.inf], 25, "finite"),
])
def test_bad_inputs_are_data_errors(x, fit_n, message) -> None:
    with pytest.raises(DataError, match=message):
        markov_volatility_regime(x, fit_n)
