"""LightningDataModule that serves one cross-validation fold at a time.

The expensive part (load, features, windows) runs once in :meth:`prepare`;
:meth:`set_fold` then only re-indexes, so a CPCV run pays for the data once.
Training batches are runs of whole, contiguous dates (``date_batches``), so
that the trading objective can replay them as the backtest does.
The batches are cut by the fold's fitted inputs (``dualhrq.pipeline``), the
same transforms the decision pipeline applies out of sample: normalisation
fitted on the fold's training windows alone, so nothing about the test
period leaks into the inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import lightning as L
import numpy as np
import polars as pl
from torch.utils.data import DataLoader

from dualhrq.config import located
from dualhrq.data.dense import bar_in_symbol
from dualhrq.data.samples import SampleSet, build_samples
from dualhrq.features.engine import Spec, compute_features, feature_names, input_lookback
from dualhrq.pipeline.inputs import FittedInputs, WindowDataset
from dualhrq.training.date_batches import DateBlockSampler, DenseBlockSampler
from dualhrq.validation.folds import FoldIndex


class MarketDataModule(L.LightningDataModule):
    """Bars -> features -> windowed samples, served by fold index."""

    def __init__(
        self,
        source: Callable[[], pl.DataFrame],
        features: Spec,
        vix: Callable[[], pl.DataFrame] | None = None,
        options: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
        market: Callable[[], pl.DataFrame] | None = None,
        seq_len: int = 32,
        horizon: int = 1,
        stride: int = 1,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        name: str = "data",
        synthetic: bool = False,
        path: str | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.spec = features
        self.vix = vix
        self.options = options  # bars -> end-of-day option chain, read when the features ask for it
        self.market = market  # the index's daily closes, read by close-only features with market=true
        self.seq_len = seq_len
        self.horizon = horizon
        self.stride = stride
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.name = name
        self.synthetic = synthetic
        self.path = path  # recorded for lineage; the source callable does the reading
        self.bars: pl.DataFrame | None = None
        self.samples: SampleSet | None = None
        self.fold: FoldIndex | None = None
        self._datasets: dict[str, WindowDataset] = {}
        self.train_sampler: DateBlockSampler | None = None  # the fold's training batches, set by set_fold

    @property
    def label(self) -> str:
        """The data set's name as reports show it, flagged where it is synthetic."""
        return self.name + (" -- SYNTHETIC (a seeded model market, not real data)" if self.synthetic else "")

    # sizes the model needs; known from the config alone, before any data is read
    @property
    def n_features(self) -> int:
        return len(feature_names(self.spec)[0])

    @property
    def n_regime_features(self) -> int:
        return len(feature_names(self.spec)[1])

    @property
    def n_symbols(self) -> int:
        return len(self._require_samples().symbols)

    def features(self) -> pl.DataFrame:
        """Load and validate the bars (once) and compute their features: ``compute_features``' frame.

        Config errors name fields relative to the data config (``source.n_days``); the caller that read it
        puts its path in front (``located(cfg.data)``)."""
        if self.bars is None:
            with located("source"):
                self.bars = self.source()
        with located("vix"):
            vix = self.vix() if self.vix is not None else None
        wants_options = getattr(self.spec, "options", False)
        with located("options"):
            chain = self.options(self.bars) if wants_options and self.options is not None else None
        with located("market"):
            market = self.market() if self.market is not None else None
        return compute_features(self.bars, self.spec, vix, options=chain, market=market)

    def prepare(self) -> SampleSet:
        """Load, validate, featurise and window the data (once)."""
        if self.samples is None:
            cols, regime_cols = feature_names(self.spec)
            self.samples = build_samples(self.features(), cols, regime_cols, seq_len=self.seq_len,
                                         horizon=self.horizon, stride=self.stride,
                                         lookback=input_lookback(self.spec))
        return self.samples

    def set_fold(self, fold: FoldIndex, inputs: FittedInputs, labels: Mapping[str, np.ndarray] | None = None,
                 seed: int = 0, slots: int = 1, dense_bars: int = 0) -> None:
        """Point the loaders at one fold, its batches cut by the fold's fitted ``inputs``.

        ``labels`` are per-sample training targets fitted on this fold (the regime labels); every
        split's items carry them under their names. ``seed`` fixes the training batches of every epoch;
        a training batch holds one block of dates for each of the model's ``slots``.
        ``dense_bars`` > 0 (dense supervision, ``Supervision.bars``): training items carry the labels of their
        last ``dense_bars`` bars, batches are windows that tile the bars (:class:`DenseBlockSampler`), and every
        split's items carry each bar's regime inputs (per-bar FiLM); validation still scores the last bar.
        """
        samples = self._require_samples()
        data = inputs.arrays(samples)
        self.fold = fold
        self.inputs = inputs
        dense = dense_bars > 0
        self._datasets = {"train": data.dataset(fold.train, labels, supervised=dense_bars),
                          **{split: data.dataset(idx, labels, sequence=dense)
                             for split, idx in (("val", fold.val), ("test", fold.test))}}
        dates = samples.t[fold.train]
        self.train_sampler = (DenseBlockSampler(dates, bar_in_symbol(samples, fold.train), dense_bars,
                                                self.batch_size, seed=seed, slots=slots) if dense
                              else DateBlockSampler(dates, self.batch_size, seed=seed, slots=slots))

    def train_dataloader(self) -> DataLoader:
        """Batches of about ``batch_size`` samples, each ``slots`` blocks of all the samples of a run of
        consecutive dates, in the order of ``train_sampler``."""
        ds = self._require_dataset("train")
        return DataLoader(ds, batch_sampler=self.train_sampler, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size)

    def _loader(self, split: str, batch_size: int) -> DataLoader:
        """Evaluation batches in sample order (time-major): contiguous dates too."""
        ds = self._require_dataset(split)
        return DataLoader(ds, batch_size=min(batch_size, max(len(ds), 1)), num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def _require_dataset(self, split: str) -> WindowDataset:
        if split not in self._datasets:
            raise RuntimeError("call set_fold() before asking for a data loader")
        return self._datasets[split]

    def _require_samples(self) -> SampleSet:
        if self.samples is None:
            raise RuntimeError("call prepare() first")
        return self.samples

