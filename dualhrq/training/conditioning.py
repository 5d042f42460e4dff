"""Everything conditioning learns from data, fitted on one CV fold's training part only.

* regime inputs: each symbol's regime features are standardised with that
  symbol's own training-fold mean and deviation (pooled ones for a symbol
  without training rows), so "high volatility" means high for that
  instrument and the level that tells symbols apart is removed; indicator
  columns (two values or fewer, e.g. "VIX available": data coverage, i.e.
  the calendar) are left out, and the remaining columns must together tell
  the symbol apart by at most ``model.conditioning.max_input_mi_bits`` on the
  training fold (a classifier's bound, ``validation/leakage.py``): while they
  carry more, the column whose loss costs the classifier most is dropped (the
  shape of a per-symbol model fit or a jump rate, which standardising does
  not remove). These vectors replace the batch's ``regime``;
* regime labels: the mixture is fitted on the training decision bars, then
  bars are labelled causally (``regime_labels.py``); a sample's label is
  that of its decision bar. Training and validation labels come from a pass
  over the bars whose features read no test bar, its smoothing restarted
  after every gap, so no test bar reaches them through the smoother's state;
  test labels from a causal pass over every bar;
* patterns (``regime_rag``): features standardised per symbol as above; the
  encoder is fitted on training windows, the
  library holds the training decisions' patterns and outcomes, and every
  sample (train, validation, test) gets its query embeddings and decision
  time, which the point-in-time search needs.

Validation and test samples never contribute a pattern or a fitted statistic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dualhrq.config import Positive, PositiveInt, at_least, check_fields, located, parse
from dualhrq.data.samples import SampleSet
from dualhrq.data.scaling import Standardizer
from dualhrq.errors import ConfigError, DataError
from dualhrq.patterns.breaker import BreakerConfig
from dualhrq.patterns.detection import PatternEncoder, check_scales
from dualhrq.patterns.library import LibraryConfig, PatternLibrary
from dualhrq.pipeline.inputs import PatternQueries, RegimeInputs
from dualhrq.training.regime_labels import RegimeLabelConfig, RegimeLabeler, switches_per_day
from dualhrq.validation.cpcv import block_spans
from dualhrq.validation.folds import FoldIndex
from dualhrq.validation.leakage import symbol_screen

GROUP = "model.conditioning"


@dataclass(frozen=True)
class PatternSettings:
    """``model.conditioning.patterns``: window scales (bars), block points per window, embedding dim and
    the library (``k``, codebook, capacity, age, index...)."""

    scales: tuple[int, ...] = (8, 16, 32)
    points: PositiveInt = 8
    dim: PositiveInt = 16
    library: LibraryConfig = field(default_factory=LibraryConfig)

    def __post_init__(self) -> None:
        check_fields(self)
        object.__setattr__(self, "scales", check_scales(self.scales, self.points))


@dataclass(frozen=True)
class ConditioningFit:
    """What a ``model/conditioning`` group asks the fold to fit: regime inputs and labels (when it has
    ``labels``), and the pattern encoder and library (when it has ``patterns``)."""

    regimes: Annotated[int, at_least(2)] = 4
    max_input_mi_bits: Positive | None = 0.1
    labels: RegimeLabelConfig | None = None
    patterns: PatternSettings | None = None
    retrieval: BreakerConfig | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        if self.patterns is not None and self.labels is None:
            raise ConfigError("patterns needs labels: retrieval conditions on the regime too. Fix: give both, as "
                              "conf/model/conditioning/regime_rag.yaml does.", field="patterns")

    @classmethod
    def from_config(cls, group: Mapping[str, Any] | None) -> ConditioningFit:
        """Parse the fitting settings of ``model.conditioning`` (its torch ``module`` is the model's)."""
        raw = OmegaConf.to_container(group, resolve=True) if isinstance(group, DictConfig) else dict(group or {})
        raw.pop("module", None)
        raw.pop("regime_loss_weight", None)
        return parse(cls, raw, GROUP)


@dataclass
class FoldConditioning:
    """The fitted inputs (for the decision pipeline), the training labels, the library, and what to log."""

    regime_inputs: RegimeInputs | None = None
    queries: PatternQueries | None = None
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    library: PatternLibrary | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def fit_fold_conditioning(cfg: ConditioningFit, samples: SampleSet, fold: FoldIndex) -> FoldConditioning:
    """Fit regime inputs and labels (with ``labels``) and the pattern library (with ``patterns``) on
    ``fold.train``."""
    out = FoldConditioning()
    if cfg.labels is None:
        return out
    train_rows = samples.end_row[fold.train]
    scaler = Standardizer.fit(samples.regime, train_rows, samples.row_symbol, len(samples.symbols), finite_only=True)
    regime = scaler.transform(samples.regime, samples.row_symbol)
    continuous = np.array([len(np.unique(samples.regime[train_rows, j])) > 2 for j in range(regime.shape[1])])
    if not continuous.any():
        raise DataError("regime labels: no continuous regime feature varies over the training fold. "
                        "Fix: enable regime features in data.features.")
    keep = _symbol_free(cfg, regime, samples, fold, continuous)
    if not keep.any():
        raise DataError("regime labels: the regime features tell the symbols apart on the training fold even "
                        f"one at a time (> {GROUP}.max_input_mi_bits={cfg.max_input_mi_bits}). Fix: raise that "
                        "limit or add market-wide regime features.")
    out.regime_inputs = RegimeInputs(scaler, keep)
    regime[:, ~keep] = 0.0
    out.metrics["conditioning/inputs_dropped"] = float((continuous & ~keep).sum())
    labels, switches = _regime_labels(cfg, regime[:, keep], samples, fold)
    fit_side = np.concatenate([fold.train, fold.val])
    unlabelled = int((labels[fit_side] < 0).sum())
    if unlabelled:
        raise DataError(f"regime labels: {unlabelled} training or validation samples have no label: their decision "
                        "bar's features read a test bar or are not finite. Fix: build the folds with the samples' "
                        "input start, make_folds(..., t0=samples.t0), or lengthen the features' warm-up.")
    out.labels["regime_label"] = labels
    out.metrics["regime/switches_per_day"] = switches
    out.metrics["regime/label_share_max"] = float(np.bincount(labels[fold.train], minlength=cfg.regimes).max()
                                                  / max(len(fold.train), 1))
    if cfg.patterns is not None:
        with located(f"{GROUP}.patterns"):
            _patterns(cfg.patterns, samples, fold, out)
    return out


def _symbol_free(cfg: ConditioningFit, regime: np.ndarray, samples: SampleSet, fold: FoldIndex,
                 candidates: np.ndarray) -> np.ndarray:
    """The ``candidates`` columns that together carry at most ``max_input_mi_bits`` about the symbol over the
    training decisions: the most telling column (largest cross-entropy rise when knocked out) is dropped until
    the rest are within the limit."""
    keep = candidates.copy()
    if cfg.max_input_mi_bits is None or len(samples.symbols) < 2:
        return keep
    x, y, t = np.nan_to_num(regime[samples.end_row[fold.train]]), samples.symbol_id[fold.train], samples.t[fold.train]
    columns = np.flatnonzero(candidates)
    keep[columns] = symbol_screen(x, y, t, [columns[[k]] for k in range(len(columns))], cfg.max_input_mi_bits)
    return keep


def _regime_labels(cfg: ConditioningFit, regime: np.ndarray, samples: SampleSet,
                   fold: FoldIndex) -> tuple[np.ndarray, float]:
    """Label of each sample's decision bar and the switches per day over all bars with regime features."""
    usable = np.isfinite(regime).all(axis=1)
    symbol_row, ts = samples.row_symbol, samples.row_ts
    labeler = RegimeLabeler(cfg.regimes, cfg.labels).fit(regime, samples.end_row[fold.train])
    rows = np.flatnonzero(usable)
    row_labels = np.full(len(regime), -1, np.int64)
    row_labels[rows] = labeler.label(regime[rows], symbol_row[rows])
    switches = switches_per_day(row_labels[rows], symbol_row[rows], ts[rows])
    labels = row_labels[samples.end_row]
    clean = usable & ~_reads_test_bars(samples, fold)
    rows = np.flatnonzero(clean)
    gaps = np.cumsum(~clean)[rows]  # a new run of clean bars starts after every unclean one
    run = np.cumsum(np.r_[True, (symbol_row[rows][1:] != symbol_row[rows][:-1]) | (gaps[1:] != gaps[:-1])])
    row_labels[:] = -1
    row_labels[rows] = labeler.label(regime[rows], run)
    fit_side = np.concatenate([fold.train, fold.val])
    labels[fit_side] = row_labels[samples.end_row[fit_side]]
    return labels, switches


def _reads_test_bars(samples: SampleSet, fold: FoldIndex) -> np.ndarray:
    """Mask of feature rows whose value reads a bar of one of the fold's test blocks (through the lookback)."""
    start = samples.row_start(np.arange(len(samples.row_ts)), samples.lookback)
    out = np.zeros(len(samples.row_ts), dtype=bool)
    for a, b in block_spans(samples.t, samples.t1, fold.test):
        out |= (start <= b) & (samples.row_ts >= a)
    return out


def _patterns(pc: PatternSettings, samples: SampleSet, fold: FoldIndex, out: FoldConditioning) -> None:
    check_scales(pc.scales, pc.points, samples.seq_len)
    train_rows = np.unique((samples.end_row[fold.train, None] - np.arange(samples.seq_len)[None, :]).ravel())
    scaler = Standardizer.fit(samples.features, train_rows, samples.row_symbol, len(samples.symbols),
                              finite_only=True)
    features = np.nan_to_num(scaler.transform(samples.features, samples.row_symbol))  # warm-up rows: no window
    encoder = PatternEncoder(pc.scales, pc.points, pc.dim, seed=pc.library.seed).fit(
        features, samples.end_row[fold.train])
    out.queries = PatternQueries(scaler, encoder)
    train_query = encoder.embed(features, samples.end_row[fold.train])  # every sample's: FittedInputs.arrays
    t = samples.t.astype("datetime64[us]").astype(np.int64)
    t1 = samples.t1.astype("datetime64[us]").astype(np.int64)
    scale = float(np.std(samples.target[fold.train]))
    outcome = (samples.target / scale).astype(np.float32)
    out.library = PatternLibrary.build(pc.library, train_query, t[fold.train], t1[fold.train],
                                       outcome[fold.train])
    out.metrics["patterns/encoder_variance"] = encoder.explained_variance()
    out.metrics.update({f"patterns/{k}": v for k, v in out.library.stats().items()})
