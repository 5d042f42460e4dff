"""The fitted transforms between feature rows and the network's batch: the first half of a decision.

Everything here is fitted on one CV fold's training part (``dualhrq.training``)
and applied unchanged to any sample of the same market: each symbol's
feature and regime z-scores (feature columns that tell the symbols apart
zeroed), the target scale, and, with regime conditioning, each symbol's
regime inputs (screened columns zeroed) and, with retrieval, the pattern
queries and their decision times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from dualhrq.data.dense import row_sample
from dualhrq.data.samples import SampleSet
from dualhrq.data.scaling import Standardizer
from dualhrq.errors import DataError
from dualhrq.patterns.detection import PatternEncoder


@dataclass
class RegimeInputs:
    """Per-symbol z-scores of the regime features; columns that identify the symbol are zeroed (``keep``)."""

    scaler: Standardizer
    keep: np.ndarray

    def transform(self, samples: SampleSet, row_symbol: np.ndarray | None = None) -> np.ndarray:
        """[n_rows, R] float32 (NaN on warm-up rows); ``row_symbol``: each row's symbol id as fitted
        (the samples' own by default)."""
        regime = self.scaler.transform(samples.regime, _rows(samples, row_symbol))
        regime[:, ~self.keep] = 0.0
        return regime


@dataclass
class PatternQueries:
    """Per-symbol z-scored feature windows embedded by the fold's encoder: the retrieval queries."""

    scaler: Standardizer
    encoder: PatternEncoder

    def transform(self, samples: SampleSet, row_symbol: np.ndarray | None = None) -> np.ndarray:
        """[S, n_scales, dim] float32 query of every sample; ``row_symbol`` as in :class:`RegimeInputs`."""
        features = np.nan_to_num(self.scaler.transform(samples.features, _rows(samples, row_symbol)))
        return self.encoder.embed(features, samples.end_row)


def _rows(samples: SampleSet, row_symbol: np.ndarray | None) -> np.ndarray:
    return samples.row_symbol if row_symbol is None else row_symbol


@dataclass
class FittedInputs:
    """Feature rows -> the network's batch items, with statistics of one fold's training part (per symbol)."""

    features: Standardizer
    regime: Standardizer
    target_scale: float
    symbols: list[str]
    regime_inputs: RegimeInputs | None = None
    queries: PatternQueries | None = None
    feature_keep: np.ndarray | None = None  # [F] bool: feature columns that reach the window (others are zero)
    _last: tuple[SampleSet, TransformedSamples] | None = field(default=None, init=False, repr=False, compare=False)

    def symbol_ids(self, samples: SampleSet) -> np.ndarray:
        """The fitted id of each of ``samples.symbols``; a symbol the fold never saw is refused."""
        unknown = sorted(set(samples.symbols) - set(self.symbols))
        if unknown:
            raise DataError(f"symbols {unknown} were not in the data these inputs were fitted on ({self.symbols}); "
                            "per-symbol statistics and embeddings exist for those only. Fix: decide on those symbols.")
        return np.array([self.symbols.index(s) for s in samples.symbols], dtype=np.int64)

    def arrays(self, samples: SampleSet) -> TransformedSamples:
        """Every array the batches of ``samples`` are cut from, computed once per sample set (the fold's
        training, its out-of-sample prediction and its conditioning report share them)."""
        if self._last is not None and self._last[0] is samples:
            return self._last[1]
        self._last = (samples, self._transform(samples))
        return self._last[1]

    def _transform(self, samples: SampleSet) -> TransformedSamples:
        ids = self.symbol_ids(samples)
        row_symbol = ids[samples.row_symbol]
        extras: dict[str, np.ndarray] = {}
        regime_rows = None
        if self.regime_inputs is not None:
            regime_rows = np.nan_to_num(self.regime_inputs.transform(samples, row_symbol))
            extras["regime"] = regime_rows[samples.end_row]
        if self.queries is not None:
            extras["query"] = self.queries.transform(samples, row_symbol)
            extras["t"] = samples.t.astype("datetime64[us]").astype(np.int64)
        features = self.features.transform(samples.features, row_symbol)
        if self.feature_keep is not None:
            features[:, ~self.feature_keep] = 0.0
        return TransformedSamples(samples=samples, features=features,
                                  regime=self.regime.transform(samples.regime, row_symbol),
                                  target_scale=self.target_scale,
                                  symbol_id=ids[samples.symbol_id], extras=extras, regime_rows=regime_rows)

    def save_arrays(self) -> dict[str, np.ndarray]:
        out = {**self.features.arrays("features"), **self.regime.arrays("regime"),
               "target_scale": np.asarray(self.target_scale)}
        if self.feature_keep is not None:
            out["features.keep"] = self.feature_keep
        if self.regime_inputs is not None:
            out |= self.regime_inputs.scaler.arrays("regime_inputs") | {"regime_inputs.keep": self.regime_inputs.keep}
        if self.queries is not None:
            out |= self.queries.scaler.arrays("queries")
            out |= {f"encoder.{k}": v for k, v in self.queries.encoder.arrays().items()}
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], symbols: list[str]) -> FittedInputs:
        a = dict(arrays)
        regime_inputs = queries = None
        if "regime_inputs.keep" in a:
            regime_inputs = RegimeInputs(Standardizer.from_arrays(a, "regime_inputs"), a["regime_inputs.keep"])
        if "queries.mean" in a:
            encoder = PatternEncoder.from_arrays({k[len("encoder."):]: v for k, v in a.items()
                                                  if k.startswith("encoder.")})
            queries = PatternQueries(Standardizer.from_arrays(a, "queries"), encoder)
        return cls(features=Standardizer.from_arrays(a, "features"), regime=Standardizer.from_arrays(a, "regime"),
                   target_scale=float(a["target_scale"]), symbols=symbols, regime_inputs=regime_inputs,
                   queries=queries, feature_keep=a.get("features.keep"))


@dataclass
class TransformedSamples:
    """Standardised feature and regime rows plus per-sample ``extras`` (conditioning inputs, labels);
    ``regime_rows`` are the conditioner's regime inputs at every row (None: the standardised ``regime``)."""

    samples: SampleSet
    features: np.ndarray
    regime: np.ndarray
    target_scale: float
    symbol_id: np.ndarray  # [S] each sample's symbol id as fitted
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    regime_rows: np.ndarray | None = None

    def dataset(self, index: np.ndarray, extras: Mapping[str, np.ndarray] | None = None, *, sequence: bool = False,
                supervised: int = 0) -> WindowDataset:
        """The samples ``index`` as batch items; ``extras`` (e.g. training labels) are added to each.
        ``sequence`` adds every bar's regime inputs (``regime_seq``, for per-bar FiLM); ``supervised`` > 0 adds
        the labels of the window's last ``supervised`` bars (dense supervision, see :class:`WindowDataset`)."""
        return WindowDataset(self, index, {**self.extras, **(extras or {})}, sequence=sequence or supervised > 0,
                             supervised=supervised)


class WindowDataset(Dataset):
    """Windows of standardised features ending at each sample's decision bar, with the sample's conditioning
    inputs; an extra named like a base item (``regime``) replaces it.

    With ``supervised`` = K > 0 each item also holds, for every bar of the window, the label of the sample ending
    there (``target_z_seq`` from the ``target_z`` extra when given, ``next_return_seq``, ``date_seq``) and
    ``supervised``: the bar is one of the last K and is a labelled sample (``dualhrq.data.dense``)."""

    def __init__(self, data: TransformedSamples, index: np.ndarray, extras: Mapping[str, np.ndarray],
                 sequence: bool = False, supervised: int = 0) -> None:
        self.data = data
        self.index = index
        self.extras = dict(extras)
        self.sequence = sequence
        self.supervised = supervised
        if supervised:
            s = data.samples
            self.row_sample = row_sample(s)
            target_z = self.extras.get("target_z", s.target / data.target_scale)
            self.bar_labels = (np.asarray(target_z, dtype=np.float32), s.next_return.astype(np.float32),
                               s.t.astype("datetime64[us]").astype(np.int64))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        d, s = self.data, self.data.samples
        j = int(self.index[i])
        end = int(s.end_row[j])
        item = {
            "x": torch.from_numpy(d.features[end - s.seq_len + 1 : end + 1]),
            "regime": torch.from_numpy(d.regime[end]),
            "symbol": torch.tensor(d.symbol_id[j], dtype=torch.long),
            "target_z": torch.tensor(s.target[j] / d.target_scale, dtype=torch.float32),
            "next_return": torch.tensor(s.next_return[j], dtype=torch.float32),
            "date": torch.tensor(s.t[j].astype("datetime64[us]").astype(np.int64)),
            **{name: torch.as_tensor(values[j]) for name, values in self.extras.items()},
        }
        if self.sequence:
            rows = d.regime if d.regime_rows is None else d.regime_rows
            item["regime_seq"] = torch.from_numpy(rows[end - s.seq_len + 1 : end + 1])
        if self.supervised:
            item |= self._bar_labels(end)
        return item

    def _bar_labels(self, end: int) -> dict[str, torch.Tensor]:
        seq_len = self.data.samples.seq_len
        bar = self.row_sample[end - seq_len + 1 : end + 1]
        target_z, next_return, date = (values[np.maximum(bar, 0)] for values in self.bar_labels)
        supervised = (bar >= 0) & (np.arange(seq_len) >= seq_len - self.supervised)
        supervised &= np.isfinite(target_z) & np.isfinite(next_return)
        return {"target_z_seq": torch.from_numpy(target_z), "next_return_seq": torch.from_numpy(next_return),
                "date_seq": torch.from_numpy(date), "supervised": torch.from_numpy(supervised)}
