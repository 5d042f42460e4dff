"""How much an input says about the symbol (or the calendar), in bits: a cross-validated classifier's bound.

The design wants inputs and conditioning that describe the market, not the
instrument: mutual information I(X; Y) under 0.1 bits, X the model's
inputs or its conditioning context, Y the symbol. For any predictor q(y|x),
I(X; Y) >= H(Y) - E[-log2 q(Y|X)] (Barber & Agakov 2003), so the entropy of
the labels minus the out-of-sample cross-entropy of a classifier is a lower
bound, multivariate and without binning. The classifier is scikit-learn's
histogram gradient boosting, fitted on all but one block of contiguous
dates and scored on that block, block by block: rows of nearby dates are
alike, so a shuffled split would let it recognise the date and not the
symbol. Its probabilities are mixed with 1% of the uniform law, so a class
its training blocks lack costs finite bits (at most log2(1/0.99) = 0.015
bits on the bound). A classifier worse than the labels' frequencies gives a
negative difference, reported as 0.

Everything is deterministic (blocks by date, a subsample of evenly spaced
dates, fixed tree seeds): the same data give the same bits whatever the run's seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import ThreadpoolController

from dualhrq.errors import DataError

MI_LIMIT_BITS = 0.1  # the design's gate
_UNIFORM_SHARE = 0.01
_THREADPOOLS: list[ThreadpoolController] = []  # found once: inspecting the loaded libraries costs ~10 ms a time


def _one_thread() -> AbstractContextManager[object]:
    """Limit BLAS/OpenMP to one thread: small fits on busy cores lose more to thread contention than they gain."""
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1)


@dataclass(frozen=True)
class InformationBound:
    """``bits`` = max(``entropy_bits`` - ``cross_entropy_bits``, 0); ``knockout_bits[k]``: how much the
    out-of-sample cross-entropy rises when the columns of group k are replaced by their training medians."""

    bits: float
    entropy_bits: float
    cross_entropy_bits: float
    knockout_bits: np.ndarray


def information_bound(x: np.ndarray, labels: np.ndarray, time: np.ndarray, *, n_blocks: int = 5,
                      max_samples: int = 5_000, knockout: Sequence[np.ndarray] = ()) -> InformationBound:
    """Lower bound on I(``x``; ``labels``) in bits, cross-validated over ``n_blocks`` blocks of ``time``.

    ``x`` [n, C] finite, ``labels`` [n], ``time`` [n] sortable (a row's date: rows sharing one stay in one
    block). Above ``max_samples`` rows, the rows of evenly spaced dates are used. ``knockout``: groups of
    column indices whose cross-entropy rise to report.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(labels)
    time = np.asarray(time)
    if x.ndim != 2 or len(x) != len(y) or len(time) != len(y):
        raise DataError(f"mutual information: x must be [n, C] with one label and one time per row, got "
                        f"{x.shape}, {y.shape}, {time.shape}")
    if not np.isfinite(x).all():
        raise DataError("mutual information: x has non-finite values; fill or drop them first.")
    dates, day = np.unique(time, return_inverse=True)
    if len(y) > max_samples:  # whole dates: thinning rows would let the symbols' shares drift with time (aliasing)
        kept = np.zeros(len(dates), dtype=bool)
        kept[np.linspace(0, len(dates) - 1, max(len(dates) * max_samples // len(y), 1)).round().astype(int)] = True
        x, y, time = x[kept[day]], y[kept[day]], time[kept[day]]
        dates, day = np.unique(time, return_inverse=True)
    classes, y = np.unique(y, return_inverse=True)
    none = InformationBound(0.0, 0.0, 0.0, np.zeros(len(knockout)))
    if len(classes) < 2 or x.shape[1] == 0 or (x == x[0]).all():
        return none
    if len(dates) < n_blocks or n_blocks < 2:
        raise DataError(f"mutual information: {len(dates)} distinct dates cannot make {n_blocks} time blocks "
                        "(at least 2). Fix: measure on more dates.")
    block = day * n_blocks // len(dates)
    freq = np.bincount(y, minlength=len(classes)) / len(y)
    entropy = float(-(freq[freq > 0] * np.log2(freq[freq > 0])).sum())
    loss = np.zeros(len(y))
    knocked = np.zeros((len(knockout), len(y)))
    for b in range(n_blocks):
        fit, held = block != b, block == b
        proba = _fitted_proba(x[fit], y[fit], len(classes))
        loss[held] = -np.log2(proba(x[held])[np.arange(held.sum()), y[held]])
        median = np.median(x[fit], axis=0)
        for k, columns in enumerate(knockout):
            z = x[held].copy()
            z[:, columns] = median[columns]
            knocked[k, held] = -np.log2(proba(z)[np.arange(held.sum()), y[held]])
    cross = float(loss.mean())
    return InformationBound(max(entropy - cross, 0.0), entropy, cross, knocked.mean(axis=1) - cross)


def mutual_information_bits(x: np.ndarray, labels: np.ndarray, time: np.ndarray, **kwargs) -> float:
    """The bound of :func:`information_bound` alone, in bits."""
    return information_bound(x, labels, time, **kwargs).bits


def symbol_screen(x: np.ndarray, labels: np.ndarray, time: np.ndarray, groups: Sequence[np.ndarray],
                  limit_bits: float) -> np.ndarray:
    """Mask of the column ``groups`` (a feature's columns) kept so that together they carry at most
    ``limit_bits`` about ``labels``: while they carry more, the group whose knock-out raises the classifier's
    cross-entropy most is dropped. Deterministic, as the bound is."""
    keep = np.ones(len(groups), dtype=bool)
    while keep.any():
        kept = [groups[k] for k in np.flatnonzero(keep)]
        columns = np.concatenate(kept)
        local = np.split(np.arange(len(columns)), np.cumsum([len(g) for g in kept])[:-1])
        bound = information_bound(x[:, columns], labels, time, knockout=local)
        if bound.bits <= limit_bits:
            break
        keep[np.flatnonzero(keep)[np.argmax(bound.knockout_bits)]] = False
    return keep


def _fitted_proba(x: np.ndarray, y: np.ndarray, n_classes: int) -> Callable[[np.ndarray], np.ndarray]:
    """The classifier fitted on (x, y) as a function x -> [n, n_classes] probabilities, mixed with the uniform
    share; a training part with one class predicts that class."""
    seen = np.unique(y)
    model = None
    if len(seen) > 1:
        with _one_thread():
            model = HistGradientBoostingClassifier(
                max_iter=100, learning_rate=0.1, max_bins=63, max_leaf_nodes=15, min_samples_leaf=40,
                l2_regularization=1.0, early_stopping=True, validation_fraction=0.2, n_iter_no_change=10,
                random_state=0).fit(x, y)

    def predict(z: np.ndarray) -> np.ndarray:
        p = np.zeros((len(z), n_classes))
        if model is None:
            p[:, seen[0]] = 1.0
        else:
            with _one_thread():
                p[:, model.classes_] = model.predict_proba(z)
        return (1 - _UNIFORM_SHARE) * p + _UNIFORM_SHARE / n_classes
    return predict
