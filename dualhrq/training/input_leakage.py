"""How much the network's inputs say about the symbol: ``inputs/mi_symbol_bits``.

The inputs are every batch item the network reads but the symbol id: the window of standardised features
and the regime vector, as the fold's fitted inputs cut them. A window enters the classifier as its decision
bar's row and its per-feature mean and deviation over the window; any function of the window carries no
more about the symbol than the window does, so the bound stays a lower bound on I(window, regime; symbol).

Measured on the fold's training samples (what the network can learn the symbol from; gated) and on its
test samples (``inputs/mi_symbol_bits_test``, reported: a test block's own market can set the symbols apart,
e.g. the NASDAQ's 2000-2002 crash against the S&P 500's, which no training statistic can remove).
"""

from __future__ import annotations

import numpy as np

from dualhrq.data.samples import SampleSet
from dualhrq.pipeline.inputs import FittedInputs
from dualhrq.validation.folds import FoldIndex
from dualhrq.validation.leakage import mutual_information_bits


def window_summary(features: np.ndarray, samples: SampleSet, index: np.ndarray) -> np.ndarray:
    """[n, 3F]: the samples' decision-bar rows of ``features`` [n_rows, F], then their window means, then their
    window deviations (feature j in columns j, F + j, 2F + j)."""
    window = features[samples.end_row[index, None] - np.arange(samples.seq_len)[None, :]]  # [n, T, F], newest first
    return np.concatenate([window[:, 0], window.mean(axis=1), window.std(axis=1)], axis=1)


def feature_columns(n_features: int) -> list[np.ndarray]:
    """The :func:`window_summary` columns of each feature."""
    return [np.array([j, n_features + j, 2 * n_features + j]) for j in range(n_features)]


def input_leakage(inputs: FittedInputs, samples: SampleSet, fold: FoldIndex) -> dict[str, float]:
    """``inputs/mi_symbol_bits`` over the training samples and ``inputs/mi_symbol_bits_test`` over the test
    samples, in bits, of the window summary and the regime vector together; and how many feature columns the
    fold's screen zeroed (``inputs/features_dropped``)."""
    data = inputs.arrays(samples)

    def bits(index: np.ndarray) -> float:
        regime = data.extras["regime"][index] if "regime" in data.extras else data.regime[samples.end_row[index]]
        x = np.concatenate([window_summary(data.features, samples, index), regime], axis=1)
        return mutual_information_bits(x, samples.symbol_id[index], samples.t[index])

    dropped = 0 if inputs.feature_keep is None else int((~inputs.feature_keep).sum())
    out = {"inputs/mi_symbol_bits": bits(fold.train), "inputs/features_dropped": float(dropped)}
    if len(fold.test):  # the final model's refit tests nothing
        out["inputs/mi_symbol_bits_test"] = bits(fold.test)
    return out
