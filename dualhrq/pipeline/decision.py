"""The fitted decision path of one CV fold: feature rows -> scaler -> conditioning -> network with ACT -> decision.

:meth:`DecisionPipeline.decide` takes the features of a market's bars (``compute_features``) to a decision at
every bar that ends a full window; :meth:`DecisionPipeline.predict` does the same for samples already cut.

One object serves the training job's out-of-sample prediction, the replay of
a finished run (``python -m dualhrq.backtest ... signals=pipeline``) and any
later serving. It is saved as plain files: the Lightning checkpoint (read
back with ``weights_only=True``), the resolved model config, the fitted
arrays (``np.savez`` without pickles) and, with retrieval, the pattern library
(``PatternLibrary.save``). Loading imports only classes named by the saved
config's ``_target_`` entries, as composing the config did.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import polars as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from dualhrq.config import build, check_targets, located
from dualhrq.data.dense import strided_windows
from dualhrq.data.samples import SampleSet, build_samples
from dualhrq.errors import DataError
from dualhrq.models.lit_module import HRMLitModule
from dualhrq.models.precision import AUTO, resolve_precision
from dualhrq.patterns.breaker import BreakerConfig
from dualhrq.patterns.library import PatternLibrary
from dualhrq.patterns.retrieval import PatternRetriever
from dualhrq.pipeline.inputs import FittedInputs

CHECKPOINT = "final.ckpt"
META = "pipeline.json"
ARRAYS = "inputs.npz"
LIBRARY = "patterns"


@dataclass
class Decisions:
    """Per sample: position in [-1, 1], standardised forecast (mean, log-variance), ACT segments used."""

    signal: np.ndarray
    forecast_z: np.ndarray
    steps: np.ndarray


class DecisionPipeline:
    """``inputs`` (fitted transforms) and ``module`` (network, ACT, retriever) of one fold; ``precision`` is the
    job's ``trainer.precision``, resolved on the machine that predicts (``auto`` as in training)."""

    def __init__(self, inputs: FittedInputs, module: HRMLitModule, model_config: dict[str, Any],
                 window: Mapping[str, Any], eval_batch_size: int = 256, precision: str = AUTO) -> None:
        self.inputs = inputs
        self.module = module
        self.model_config = model_config
        self.window = dict(window)  # feature_names, regime_names, seq_len, horizon of the samples fitted on
        self.eval_batch_size = eval_batch_size
        self.precision = precision

    def decide(self, features: pl.DataFrame) -> pl.DataFrame:
        """A decision at every bar of ``features`` (a ``compute_features`` frame of fitted symbols, with at least
        ``seq_len`` usable bars of history) that ends a full window, the latest bars included:
        ``ts, symbol, signal, forecast`` (forecast in return units) and ``steps`` (ACT segments used)."""
        samples = self.windows(features)
        out = self.predict(samples, np.arange(len(samples)))
        return pl.DataFrame({"ts": samples.t, "symbol": np.asarray(samples.symbols)[samples.symbol_id],
                             "signal": out.signal, "forecast": out.forecast_z[:, 0] * self.inputs.target_scale,
                             "steps": out.steps})

    def windows(self, features: pl.DataFrame) -> SampleSet:
        """``features`` cut into the windows this pipeline was fitted on, the latest bars (no label yet) included."""
        w = self.window
        return build_samples(features, w["feature_names"], w["regime_names"], seq_len=w["seq_len"],
                             horizon=w["horizon"], labelled=False)

    def loader(self, samples: SampleSet, index: np.ndarray) -> DataLoader:
        """The samples ``index`` as the network's batches, in order (with every bar's regime inputs for a
        densely trained model, whose FiLM is per bar)."""
        ds = self.inputs.arrays(samples).dataset(index, sequence=self.module.supervision.dense)
        return DataLoader(ds, batch_size=min(self.eval_batch_size, max(len(ds), 1)), shuffle=False)

    def predict(self, samples: SampleSet, index: np.ndarray, stride: int | None = None,
                online: bool = False) -> Decisions:
        """Decisions for the samples ``index`` (Lightning ``predict``: eval mode, inference mode, one device).

        ``stride`` (default: the model's ``prediction.stride``) > 1 runs one window per ``stride`` consecutive
        decisions of a symbol and reads each decision at its own bar of that window (``data.dense``): every
        sample still gets exactly one decision, from bars up to its own, for about 1/stride of the windows.
        ACT halts per window, so the decisions read from one window share its halting segment, which the
        window's last bar chooses; ``model.act.eval_mode=max_steps`` (or no ACT) makes the depth of every
        decision independent of later bars too.

        ``online=True`` runs the module directly instead of through a Lightning ``Trainer`` (same precision,
        eval and inference mode): what a served request of a few windows wants, without the trainer's set-up."""
        stride = self.module.prediction.stride if stride is None else stride
        run = self._run_online if online else self._run
        if stride == 1:
            outs = run(samples, index)
            signal, forecast, steps = (_cat(outs, k) for k in ("signal", "forecast", "steps"))
            return Decisions(signal=signal, forecast_z=forecast, steps=steps)
        with located("model"):
            dataclasses.replace(self.module.prediction, stride=stride).check(self.module.supervision,
                                                                              samples.seq_len)
        plan = strided_windows(samples, index, stride)
        outs = run(samples, plan.windows)
        bar = samples.seq_len - 1 - plan.back
        return Decisions(signal=_cat(outs, "dense_signal")[plan.slot, bar],
                         forecast_z=_cat(outs, "dense_forecast")[plan.slot, bar],
                         steps=_cat(outs, "steps")[plan.slot])

    def _run(self, samples: SampleSet, index: np.ndarray) -> list[dict[str, torch.Tensor]]:
        trainer = L.Trainer(devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, precision=resolve_precision(self.precision))
        return trainer.predict(self.module, dataloaders=self.loader(samples, index))

    def _run_online(self, samples: SampleSet, index: np.ndarray) -> list[dict[str, torch.Tensor]]:
        precision = resolve_precision(self.precision)
        self.module.eval()
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16-mixed"):
            return [self.module.predict_step(batch, i) for i, batch in enumerate(self.loader(samples, index))]

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the pipeline under ``directory``. A weights-only Lightning checkpoint already there (the
        training job's ``final.ckpt``) is kept as the weights; otherwise the module's weights are written."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        if not (out / CHECKPOINT).is_file():
            torch.save({"state_dict": self.module.state_dict()}, out / CHECKPOINT)
        retriever = self.module.retriever
        meta = {"model": self.model_config, "symbols": self.inputs.symbols, "window": self.window,
                "eval_batch_size": self.eval_batch_size, "precision": self.precision, "sizes": self.module.sizes,
                "retrieval": None if retriever is None else asdict(retriever.cfg)}
        (out / META).write_text(json.dumps(meta, indent=1))
        np.savez(out / ARRAYS, **self.inputs.save_arrays())
        if retriever is not None:
            retriever.library.save(out / LIBRARY)
        return out

    @classmethod
    def load(cls, directory: str | Path, trusted: Sequence[str] = (), patterns: bool = True) -> DecisionPipeline:
        """Read a pipeline written by :meth:`save`; its model config may name only trusted targets
        (``dualhrq.config.check_targets``, extended by the module prefixes ``trusted``). ``patterns=False``
        leaves the pattern library out: retrieval then always fails open, to regime-only conditioning."""
        path = Path(directory)
        if not (path / META).is_file():
            raise DataError(f"{path} holds no decision pipeline ({META} is missing). Fix: point at a fold's "
                            "pipeline directory, e.g. the run artifact checkpoints/fold0.")
        meta = json.loads((path / META).read_text())
        check_targets(meta["model"], trusted, where=str(path / META))
        module: HRMLitModule = build(OmegaConf.create(meta["model"]), **meta["sizes"])
        state = torch.load(path / CHECKPOINT, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
        if meta["retrieval"] is not None and patterns:
            try:
                library = PatternLibrary.load(path / LIBRARY)
            except (OSError, RuntimeError, ValueError, KeyError) as err:
                raise DataError(f"{path / LIBRARY}: the pattern library cannot be read ({type(err).__name__}: "
                                f"{str(err)[:200]}). Fix: restore it, or load with patterns=False to decide on "
                                "regime-only conditioning.") from None
            module.attach_retriever(PatternRetriever(library, BreakerConfig(**meta["retrieval"])))
        with np.load(path / ARRAYS, allow_pickle=False) as arrays:
            inputs = FittedInputs.from_arrays({k: arrays[k] for k in arrays.files}, meta["symbols"])
        return cls(inputs, module, meta["model"], meta["window"], meta["eval_batch_size"],
                   meta.get("precision", AUTO))


def _cat(outs: list[dict[str, torch.Tensor]], key: str) -> np.ndarray:
    return torch.cat([o[key] for o in outs]).float().cpu().numpy()
