"""Unsupervised regime labels: hysteresis by hand, recovery of planted regimes, switch counting, bad settings."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from dualhrq.config import parse
from dualhrq.errors import ConfigError
from dualhrq.training.regime_labels import RegimeLabelConfig, RegimeLabeler, hysteresis, switches_per_day


def test_hysteresis_worked_by_hand():
    p = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.9, 0.1]])
    # margin 0.3, min_dwell 2: bar 1 (lead 0.2) is not enough; bar 2 (lead 0.4, dwell 2) switches to 1;
    # bar 4 favours 0 by 0.2 only; bar 6 favours 0 by 0.8 with dwell 4: back to 0
    assert hysteresis(p, np.zeros(7, int), margin=0.3, min_dwell=2).tolist() == [0, 0, 1, 1, 1, 1, 0]
    # min_dwell 5: regime 0 must hold 5 bars before any switch (bar 5, lead 0.8); then bar 6 is too soon
    assert hysteresis(p, np.zeros(7, int), margin=0.3, min_dwell=5).tolist() == [0, 0, 0, 0, 0, 1, 1]
    # a new symbol starts afresh at its own first bar's best regime
    assert hysteresis(p, np.array([0, 0, 0, 1, 1, 1, 1]), 0.3, 2).tolist() == [0, 0, 1, 1, 1, 1, 0]


def test_switches_per_day_worked_by_hand():
    ts = np.array(["2024-01-02T10:00", "2024-01-02T11:00", "2024-01-03T10:00", "2024-01-03T11:00",
                   "2024-01-02T10:00", "2024-01-03T10:00"], dtype="datetime64[us]")
    labels = np.array([0, 1, 1, 1, 2, 2])
    symbol = np.array([0, 0, 0, 0, 1, 1])
    # symbol 0: switch on day 1, none on day 2; symbol 1: none (its first bar is no switch): 1 of 4 symbol-days
    assert switches_per_day(labels, symbol, ts) == pytest.approx(0.25)
    # a switch at the first bar of a day counts for that day
    assert switches_per_day(np.array([0, 0, 1, 1]), np.zeros(4, int), ts[:4]) == pytest.approx(0.5)


def planted(n=1200, seed=0):
    """Two symbols; a 3-regime path in blocks of 100 bars, features = regime mean + noise."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(rng.permutation(np.tile([0, 1, 2], 4)), 100)[:n]
    means = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    return means[truth] + 0.5 * rng.normal(size=(n, 2)), truth


def test_mixture_with_hysteresis_recovers_planted_regimes():
    x, truth = planted()
    symbol = np.zeros(len(x), int)
    labeler = RegimeLabeler(3, RegimeLabelConfig(covariance="full", halflife=2.0, margin=0.3, min_dwell=10))
    labels = labeler.fit(x, np.arange(len(x))).label(x, symbol)
    # up to relabelling and a few bars of lag per switch
    assert adjusted_rand_score(truth, labels) > 0.9
    assert np.count_nonzero(np.diff(labels)) == np.count_nonzero(np.diff(truth))


def test_labeler_refuses_bad_settings():
    with pytest.raises(ConfigError, match=r"^regimes must be an integer >= 2"):
        RegimeLabeler(1, RegimeLabelConfig())
    with pytest.raises(ConfigError, match=r"^margin must be a number in \[0, 1\), got 1\.5"):
        RegimeLabelConfig(margin=1.5)
    with pytest.raises(ConfigError, match=r"^model\.conditioning\.labels\.margin must be"):  # read from the config
        parse(RegimeLabelConfig, {"margin": 1.5}, "model.conditioning.labels")
