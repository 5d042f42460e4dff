"""Everything conditioning learns from data, fitted on one CV fold's training part only.

* regime labels: the mixture is fitted on the training decision bars, then
  every bar is labelled causally (``regime_labels.py``); a sample's label is
  that of its decision bar;
* patterns (``regime_rag``): the encoder is fitted on training windows, the
  library holds the training decisions' patterns and outcomes, and every
  sample (train, validation, test) gets its query embeddings and decision
  time, which the point-in-time search needs.

Validation and test samples never contribute a pattern or a fitted statistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dualhrq.data.samples import SampleSet
from dualhrq.errors import DataError
from dualhrq.models.conditioning.config import CondConfig
from dualhrq.models.conditioning.regime_labels import RegimeLabeler, switches_per_day
from dualhrq.patterns.detection import PatternEncoder, check_scales
from dualhrq.patterns.library import PatternLibrary
from dualhrq.validation.folds import FoldIndex


@dataclass
class FoldConditioning:
    """Per-sample arrays for the data loaders (``extras``), the library, and what to log."""

    extras: dict[str, np.ndarray] = field(default_factory=dict)
    library: PatternLibrary | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def fit_fold_conditioning(kind: str, cfg: CondConfig, samples: SampleSet, fold: FoldIndex, row_symbol: np.ndarray,
                          row_ts: np.ndarray) -> FoldConditioning:
    """Fit labels (``regime``, ``regime_rag``) and the pattern library (``regime_rag``) on ``fold.train``.

    ``row_symbol`` / ``row_ts`` are the symbol id and time of every feature row (``MarketDataModule.rows``).
    """
    out = FoldConditioning()
    if kind not in ("regime", "regime_rag"):
        return out
    labels, switches = _regime_labels(cfg, samples, fold, row_symbol, row_ts)
    out.extras["regime_label"] = labels
    out.metrics["regime/switches_per_day"] = switches
    out.metrics["regime/label_share_max"] = float(np.bincount(labels[fold.train], minlength=cfg.regimes).max()
                                                  / max(len(fold.train), 1))
    if kind == "regime_rag":
        _patterns(cfg, samples, fold, out)
    return out


def _regime_labels(cfg: CondConfig, samples: SampleSet, fold: FoldIndex, symbol_row: np.ndarray,
                   ts: np.ndarray) -> tuple[np.ndarray, float]:
    """Label of each sample's decision bar and the switches per day over all bars with regime features."""
    usable = np.flatnonzero(np.isfinite(samples.regime).all(axis=1))
    train_rows = samples.end_row[fold.train]
    # indicators (e.g. "VIX available") mark data coverage, i.e. the calendar, not a market state: left out
    train_x = samples.regime[train_rows]
    cols = [j for j in range(train_x.shape[1]) if len(np.unique(train_x[:, j])) > 2]
    if not cols:
        raise DataError("regime labels: no continuous regime feature varies over the training fold. "
                        "Fix: enable regime features in data.features.")
    labeler = RegimeLabeler(cfg.regimes, cfg.labels).fit(samples.regime[:, cols], train_rows)
    row_labels = np.full(len(samples.regime), -1, np.int64)
    row_labels[usable] = labeler.label(samples.regime[np.ix_(usable, cols)], symbol_row[usable])
    switches = switches_per_day(row_labels[usable], symbol_row[usable], ts[usable])
    return row_labels[samples.end_row], switches


def _patterns(cfg: CondConfig, samples: SampleSet, fold: FoldIndex, out: FoldConditioning) -> None:
    pc = cfg.patterns
    check_scales(pc.scales, pc.points, samples.seq_len)
    train_rows = np.unique((samples.end_row[fold.train, None] - np.arange(samples.seq_len)[None, :]).ravel())
    mean = samples.features[train_rows].mean(axis=0)
    std = samples.features[train_rows].std(axis=0)
    features = ((samples.features - mean) / np.where(std > 1e-12, std, 1.0)).astype(np.float32)
    features = np.nan_to_num(features)  # warm-up rows; no sample window reaches them
    encoder = PatternEncoder(pc.scales, pc.points, pc.dim, seed=pc.library.seed).fit(
        features, samples.end_row[fold.train])
    query = encoder.embed(features, samples.end_row)
    t = samples.t.astype("datetime64[us]").astype(np.int64)
    t1 = samples.t1.astype("datetime64[us]").astype(np.int64)
    scale = float(np.std(samples.target[fold.train]))
    outcome = (samples.target / scale).astype(np.float32)
    library = PatternLibrary.build(pc.library, query[fold.train], t[fold.train], t1[fold.train], outcome[fold.train])
    out.extras["query"] = query
    out.extras["t"] = t
    out.library = library
    out.metrics["patterns/encoder_variance"] = encoder.explained_variance()
    out.metrics.update({f"patterns/{k}": v for k, v in library.stats().items()})
