"""The standardiser against z-scores worked out by hand."""

from __future__ import annotations

import numpy as np

from dualhrq.data.scaling import Standardizer


def test_pooled_z_scores_use_the_training_rows_only():
    values = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, -7.0]], dtype=np.float32)
    z = Standardizer.fit(values, rows=np.array([0, 1])).transform(values)
    # column 0: mean 2, std 1; column 1 is flat on the training rows, so it is centred but not scaled
    np.testing.assert_allclose(z, [[-1.0, 0.0], [1.0, 0.0], [98.0, -12.0]])
    assert z.dtype == np.float32


def test_per_symbol_z_scores_fall_back_to_pooled_statistics():
    values = np.array([[1.0], [3.0], [10.0], [np.nan], [20.0], [7.0]], dtype=np.float32)
    groups = np.array([0, 0, 1, 1, 1, 2])
    train = np.array([0, 1, 2, 3, 4, 5])
    scaler = Standardizer.fit(values, train, groups, n_groups=3, finite_only=True)
    z = scaler.transform(values, groups)
    # symbol 0: mean 2, std 1; symbol 1: its two finite rows, mean 15, std 5;
    # symbol 2 has one training row: the pooled mean 8.2 and std of {1, 3, 10, 20, 7}
    pooled = np.array([1.0, 3.0, 10.0, 20.0, 7.0])
    np.testing.assert_allclose(z[[0, 1]].ravel(), [-1.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(z[[2, 4]].ravel(), [-1.0, 1.0], rtol=1e-6)
    assert np.isnan(z[3, 0])
    np.testing.assert_allclose(z[5, 0], (7.0 - pooled.mean()) / pooled.std(), rtol=1e-6)


def test_arrays_round_trip():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(50, 3)).astype(np.float32)
    scaler = Standardizer.fit(values, np.arange(30), rng.integers(0, 4, 50), n_groups=4)
    again = Standardizer.from_arrays(scaler.arrays("x"), "x")
    groups = rng.integers(0, 4, 50)
    np.testing.assert_array_equal(again.transform(values, groups), scaler.transform(values, groups))
