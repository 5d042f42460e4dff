"""LightningDataModule that serves one cross-validation fold at a time.

The expensive part (load, features, windows) runs once in :meth:`prepare`;
:meth:`set_fold` then only re-indexes, so a CPCV run pays for the data once.
Normalisation statistics are fitted on the fold's training windows alone, so
nothing about the test period leaks into the inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import lightning as L
import numpy as np
import polars as pl
import torch
from torch.utils.data import DataLoader, Dataset

from dualhrq.data.samples import SampleSet, build_samples
from dualhrq.errors import DataError
from dualhrq.features.engine import FeatureSpec, compute_features, feature_names
from dualhrq.validation.folds import FoldIndex


class WindowDataset(Dataset):
    """Windows of normalised features ending at each sample's decision bar."""

    def __init__(self, samples: SampleSet, index: np.ndarray, features: np.ndarray,
                 regime: np.ndarray, target_scale: float, extras: Mapping[str, np.ndarray] | None = None) -> None:
        self.samples = samples
        self.extras = dict(extras or {})
        self.index = index
        self.features = features
        self.regime = regime
        self.target_scale = target_scale

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.samples
        j = int(self.index[i])
        end = int(s.end_row[j])
        return {
            "x": torch.from_numpy(self.features[end - s.seq_len + 1 : end + 1]),
            "regime": torch.from_numpy(self.regime[end]),
            "symbol": torch.tensor(s.symbol_id[j], dtype=torch.long),
            "target_z": torch.tensor(s.target[j] / self.target_scale, dtype=torch.float32),
            "next_return": torch.tensor(s.next_return[j], dtype=torch.float32),
            **{name: torch.as_tensor(values[j]) for name, values in self.extras.items()},
        }


class MarketDataModule(L.LightningDataModule):
    """Bars -> features -> windowed samples, served by fold index."""

    def __init__(
        self,
        source: Callable[[], pl.DataFrame],
        features: FeatureSpec,
        vix: Callable[[], pl.DataFrame] | None = None,
        options: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
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
        self.rows: tuple[np.ndarray, np.ndarray] | None = None  # symbol id and time of every feature row
        self.fold: FoldIndex | None = None
        self._datasets: dict[str, WindowDataset] = {}

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

    def prepare(self) -> SampleSet:
        """Load, validate, featurise and window the data (once)."""
        if self.samples is None:
            self.bars = self.source()
            vix = self.vix() if self.vix is not None else None
            wants_options = getattr(self.spec, "options", False)
            chain = self.options(self.bars) if wants_options and self.options is not None else None
            frame = compute_features(self.bars, self.spec, vix, options=chain)
            cols, regime_cols = feature_names(self.spec)
            self.samples = build_samples(frame, cols, regime_cols, seq_len=self.seq_len,
                                         horizon=self.horizon, stride=self.stride)
            codes = frame["symbol"].cast(pl.Enum(self.samples.symbols)).to_physical().to_numpy()
            self.rows = (codes.astype(np.int64), frame["ts"].cast(pl.Datetime("us")).to_numpy())
        return self.samples

    def set_fold(self, fold: FoldIndex, extras: Mapping[str, np.ndarray] | None = None) -> None:
        """Point the loaders at one fold and refit normalisation on its training windows.

        ``extras`` are per-sample arrays (indexed like the samples) fitted on this
        fold's training part, e.g. regime labels and pattern queries; each item
        of every split carries them under their names (replacing an entry of the
        same name, as the conditioning's own ``regime`` vectors do).
        """
        s = self._require_samples()
        rows = np.unique((s.end_row[fold.train, None] - np.arange(s.seq_len)[None, :]).ravel())
        features = _standardise(s.features, rows)
        regime = _standardise(s.regime, rows)
        scale = float(np.std(s.target[fold.train]))
        if not np.isfinite(scale) or scale <= 0:
            raise DataError(f"fold {fold.fold}: the training targets are constant; check data.horizon "
                            "and that the prices move")
        self.fold = fold
        self.target_scale = scale
        self._datasets = {split: WindowDataset(s, idx, features, regime, scale, extras)
                          for split, idx in (("train", fold.train), ("val", fold.val), ("test", fold.test))}

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def _loader(self, split: str, batch_size: int, shuffle: bool, drop_last: bool = False) -> DataLoader:
        if split not in self._datasets:
            raise RuntimeError("call set_fold() before asking for a data loader")
        ds = self._datasets[split]
        return DataLoader(ds, batch_size=min(batch_size, max(len(ds), 1)), shuffle=shuffle,
                          drop_last=drop_last and len(ds) > batch_size, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def _require_samples(self) -> SampleSet:
        if self.samples is None:
            raise RuntimeError("call prepare() first")
        return self.samples


def _standardise(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Z-score every column with the mean and std of the given (training) rows."""
    mean = values[rows].mean(axis=0)
    std = values[rows].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return ((values - mean) / std).astype(np.float32)
