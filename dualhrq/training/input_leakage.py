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
from dualhrq.pipeline.inputs import FittedInputs, TransformedSamples
from dualhrq.validation.folds import FoldIndex
from dualhrq.validation.leakage import mutual_information_bits


def input_summary(data: TransformedSamples, index: np.ndarray) -> np.ndarray:
    """[n, 3F + R]: each sample's decision-bar features, their window mean and deviation, and its regime item."""
    s = data.samples
    rows = s.end_row[index, None] - np.arange(s.seq_len)[None, :]
    window = data.features[rows]  # [n, T, F], newest first
    regime = data.extras["regime"][index] if "regime" in data.extras else data.regime[s.end_row[index]]
    return np.concatenate([window[:, 0], window.mean(axis=1), window.std(axis=1), regime], axis=1)


def input_leakage(inputs: FittedInputs, samples: SampleSet, fold: FoldIndex) -> dict[str, float]:
    """``inputs/mi_symbol_bits`` over the training samples and ``inputs/mi_symbol_bits_test`` over the test
    samples, in bits."""
    data = inputs.arrays(samples)
    return {f"inputs/mi_symbol_bits{suffix}": mutual_information_bits(
                input_summary(data, index), samples.symbol_id[index], samples.t[index])
            for suffix, index in (("", fold.train), ("_test", fold.test))}
