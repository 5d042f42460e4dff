"""Unsupervised regime labels, fitted on the training fold only, and their stability.

A Gaussian mixture (scikit-learn's EM fit; Dempster, Laird & Rubin 1977) on
the standardised regime features of the training fold's decision bars gives
each bar posterior regime probabilities. Raw posteriors flicker, so labels
are smoothed causally per symbol: an exponentially weighted mean of the
posteriors, then hysteresis (a Schmitt trigger): the label moves to another
regime only when that regime's smoothed probability beats the current one's
by ``margin`` and the current label has held for ``min_dwell`` bars. Both
use past bars only. Components are numbered by their mean of the first
regime feature (regime 0 = the calmest when that feature is a volatility).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import polars as pl
from sklearn.mixture import GaussianMixture

from dualhrq.config import Positive, PositiveInt, at_least, between, check_fields, check_value, one_of
from dualhrq.data.scaling import Standardizer
from dualhrq.errors import DataError

COVARIANCES = ("full", "diag", "tied", "spherical")


@dataclass(frozen=True)
class RegimeLabelConfig:
    """``model.conditioning.labels``: mixture and smoothing settings (bars)."""

    covariance: Annotated[str, one_of(COVARIANCES)] = "diag"
    halflife: Positive = 5.0
    margin: Annotated[float, between(0, 1, hi_open=True)] = 0.3
    min_dwell: PositiveInt = 20
    max_fit_rows: PositiveInt = 50_000
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)


class RegimeLabeler:
    """Fit on training rows, then label every row with smoothed, hysteretic regimes."""

    def __init__(self, n_regimes: int, cfg: RegimeLabelConfig) -> None:
        self.n_regimes = check_value("regimes", n_regimes, Annotated[int, at_least(2)])
        self.cfg = cfg
        self.mixture: GaussianMixture | None = None
        self.scaler: Standardizer | None = None
        self.order: np.ndarray | None = None

    def fit(self, regime: np.ndarray, rows: np.ndarray) -> RegimeLabeler:
        """Fit the mixture on ``regime[rows]`` (the training fold's bars; subsampled beyond max_fit_rows)."""
        x = regime[rows]
        if len(x) > self.cfg.max_fit_rows:
            x = x[np.random.default_rng(self.cfg.seed).choice(len(x), self.cfg.max_fit_rows, replace=False)]
        if len(x) < 10 * self.n_regimes:
            raise DataError(f"regime labels: {len(x)} training bars are too few for {self.n_regimes} regimes. "
                            "Fix: lower model.conditioning.regimes or train on more data.")
        self.scaler = Standardizer.fit(x)
        self.mixture = GaussianMixture(self.n_regimes, covariance_type=self.cfg.covariance, n_init=2,
                                       reg_covar=1e-4, random_state=self.cfg.seed).fit(self.scaler.transform(x))
        self.order = np.argsort(self.mixture.means_[:, 0])
        return self

    def posteriors(self, regime: np.ndarray) -> np.ndarray:
        """Raw mixture posteriors [n, R] in the calm-first order."""
        if self.mixture is None:
            raise RuntimeError("fit the RegimeLabeler first")
        return self.mixture.predict_proba(self.scaler.transform(regime))[:, self.order]

    def label(self, regime: np.ndarray, symbol_id: np.ndarray) -> np.ndarray:
        """Smoothed regime label (int64) of every row; rows ordered by (symbol, time).

        The smoothing restarts wherever ``symbol_id`` changes: at a new symbol, or at a new run of the
        same symbol's bars when the caller numbers runs (bars after a gap that must not carry state).
        """
        probs = self.posteriors(regime)
        smooth = pl.DataFrame(probs, schema=[f"p{i}" for i in range(self.n_regimes)]).with_columns(
            pl.all().ewm_mean(half_life=self.cfg.halflife, adjust=True).over(pl.Series(symbol_id))).to_numpy()
        return hysteresis(smooth, symbol_id, self.cfg.margin, self.cfg.min_dwell)


def hysteresis(probs: np.ndarray, symbol_id: np.ndarray, margin: float, min_dwell: int) -> np.ndarray:
    """Causal Schmitt-trigger labels from probabilities [n, R]; restarts at each new symbol."""
    labels = np.empty(len(probs), dtype=np.int64)
    best = probs.argmax(axis=1)
    state, dwell, prev_symbol = -1, 0, None
    for i in range(len(probs)):
        if symbol_id[i] != prev_symbol:
            state, dwell, prev_symbol = int(best[i]), 0, symbol_id[i]
        elif best[i] != state and dwell >= min_dwell and probs[i, best[i]] - probs[i, state] >= margin:
            state, dwell = int(best[i]), 0
        dwell += 1
        labels[i] = state
    return labels


def switches_per_day(labels: np.ndarray, symbol_id: np.ndarray, ts: np.ndarray) -> float:
    """Share of (symbol, trading day) pairs whose label differs from the symbol's previous bar at least once.

    Each symbol's first bar has no predecessor and counts as no switch. Rows are ordered by (symbol, time).
    """
    if len(labels) == 0:
        return 0.0
    frame = pl.DataFrame({"symbol": symbol_id, "day": np.asarray(ts).astype("datetime64[D]"), "label": labels})
    frame = frame.with_columns(switch=(pl.col("label") != pl.col("label").shift(1)).over("symbol").fill_null(False))
    return float(frame.group_by("symbol", "day").agg(pl.col("switch").any())["switch"].mean())
