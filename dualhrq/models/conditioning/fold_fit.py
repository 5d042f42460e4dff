"""Everything conditioning learns from data, fitted on one CV fold's training part only.

* regime inputs: each symbol's regime features are standardised with that
  symbol's own training-fold mean and deviation (pooled ones for a symbol
  without training rows), so "high volatility" means high for that
  instrument and the level that tells symbols apart is removed; indicator
  columns (two values or fewer, e.g. "VIX available": data coverage, i.e.
  the calendar) are left out, and so is any feature that on its own tells
  the symbol apart by more than ``model.cond.max_input_mi_bits`` on the
  training fold (e.g. the shape of a per-symbol model fit or a jump rate,
  which standardising does not remove). These vectors replace the batch's
  ``regime``;
* regime labels: the mixture is fitted on the training decision bars, then
  every bar is labelled causally (``regime_labels.py``); a sample's label is
  that of its decision bar;
* patterns (``regime_rag``): features standardised per symbol as above; the
  encoder is fitted on training windows, the
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
from dualhrq.models.conditioning.mutual_info import mutual_information_bits
from dualhrq.models.conditioning.regime_labels import RegimeLabeler, switches_per_day
from dualhrq.patterns.detection import PatternEncoder, check_scales
from dualhrq.patterns.library import PatternLibrary
from dualhrq.validation.folds import FoldIndex


@dataclass
class FoldConditioning:
    """Per-sample arrays for the data loaders (``extras``), the library, and what to log."""

    extras: dict[str, np.ndarray] = field(default_factory=dict)
    library: PatternLibrary | None = None
    encoder: PatternEncoder | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def fit_fold_conditioning(kind: str, cfg: CondConfig, samples: SampleSet, fold: FoldIndex, row_symbol: np.ndarray,
                          row_ts: np.ndarray) -> FoldConditioning:
    """Fit labels (``regime``, ``regime_rag``) and the pattern library (``regime_rag``) on ``fold.train``.

    ``row_symbol`` / ``row_ts`` are the symbol id and time of every feature row (``MarketDataModule.rows``).
    """
    out = FoldConditioning()
    if kind not in ("regime", "regime_rag"):
        return out
    train_rows = samples.end_row[fold.train]
    regime = _per_symbol_standardise(samples.regime, row_symbol, train_rows)
    continuous = np.array([len(np.unique(samples.regime[train_rows, j])) > 2 for j in range(regime.shape[1])])
    if not continuous.any():
        raise DataError("regime labels: no continuous regime feature varies over the training fold. "
                        "Fix: enable regime features in data.features.")
    keep = continuous & _symbol_free(cfg, regime, samples, fold)
    if not keep.any():
        raise DataError("regime labels: every regime feature tells the symbols apart on the training fold "
                        f"(> model.cond.max_input_mi_bits={cfg.max_input_mi_bits}). Fix: raise that limit or add "
                        "market-wide regime features.")
    regime[:, ~keep] = 0.0
    out.extras["regime"] = np.nan_to_num(regime[samples.end_row])
    out.metrics["conditioning/inputs_dropped"] = float((continuous & ~keep).sum())
    labels, switches = _regime_labels(cfg, regime[:, keep], samples, fold, row_symbol, row_ts)
    out.extras["regime_label"] = labels
    out.metrics["regime/switches_per_day"] = switches
    out.metrics["regime/label_share_max"] = float(np.bincount(labels[fold.train], minlength=cfg.regimes).max()
                                                  / max(len(fold.train), 1))
    if kind == "regime_rag":
        _patterns(cfg, samples, fold, row_symbol, out)
    return out


def _symbol_free(cfg: CondConfig, regime: np.ndarray, samples: SampleSet, fold: FoldIndex) -> np.ndarray:
    """Mask of regime columns whose own MI with the symbol, over the training decisions, is within the limit."""
    keep = np.ones(regime.shape[1], dtype=bool)
    if cfg.max_input_mi_bits is None or len(samples.symbols) < 2:
        return keep
    x, y = regime[samples.end_row[fold.train]], samples.symbol_id[fold.train]
    for j in range(regime.shape[1]):
        keep[j] = mutual_information_bits(np.nan_to_num(x[:, [j]]), y, max_samples=5000,
                                          seed=cfg.labels.seed) <= cfg.max_input_mi_bits
    return keep


def _regime_labels(cfg: CondConfig, regime: np.ndarray, samples: SampleSet, fold: FoldIndex,
                   symbol_row: np.ndarray, ts: np.ndarray) -> tuple[np.ndarray, float]:
    """Label of each sample's decision bar and the switches per day over all bars with regime features."""
    usable = np.flatnonzero(np.isfinite(regime).all(axis=1))
    labeler = RegimeLabeler(cfg.regimes, cfg.labels).fit(regime, samples.end_row[fold.train])
    row_labels = np.full(len(regime), -1, np.int64)
    row_labels[usable] = labeler.label(regime[usable], symbol_row[usable])
    switches = switches_per_day(row_labels[usable], symbol_row[usable], ts[usable])
    return row_labels[samples.end_row], switches


def _per_symbol_standardise(values: np.ndarray, row_symbol: np.ndarray, train_rows: np.ndarray) -> np.ndarray:
    """Z-scores with each symbol's mean and deviation over ``train_rows`` (pooled ones where a symbol has
    fewer than two training rows); float32, NaN where ``values`` is."""
    rows = train_rows[np.isfinite(values[train_rows]).all(axis=1)]
    mean = np.broadcast_to(values[rows].mean(axis=0), values.shape).copy()
    std = np.broadcast_to(values[rows].std(axis=0), values.shape).copy()
    for sym in np.unique(row_symbol):
        own = rows[row_symbol[rows] == sym]
        if len(own) >= 2:
            at = row_symbol == sym
            mean[at], std[at] = values[own].mean(axis=0), values[own].std(axis=0)
    return ((values - mean) / np.where(std > 1e-12, std, 1.0)).astype(np.float32)


def _patterns(cfg: CondConfig, samples: SampleSet, fold: FoldIndex, row_symbol: np.ndarray,
              out: FoldConditioning) -> None:
    pc = cfg.patterns
    check_scales(pc.scales, pc.points, samples.seq_len)
    train_rows = np.unique((samples.end_row[fold.train, None] - np.arange(samples.seq_len)[None, :]).ravel())
    features = _per_symbol_standardise(samples.features, row_symbol, train_rows)
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
    out.library, out.encoder = library, encoder
    out.metrics["patterns/encoder_variance"] = encoder.explained_variance()
    out.metrics.update({f"patterns/{k}": v for k, v in library.stats().items()})
