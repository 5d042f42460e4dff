"""The served decision path: a request's bars -> features -> fitted scaler -> conditioning -> network with ACT.

A :class:`ServedModel` is a saved :class:`~dualhrq.pipeline.decision.DecisionPipeline` plus what turns raw bars
into its features: the training run's feature spec (a config node, built as composing it did) and the
:class:`~dualhrq.serving.request.RequestSpec` of the columns a request carries. It answers with one decision per
symbol, at the symbol's latest bar: ``signal``, ``forecast`` (return units), ``segments`` (ACT segments used)
and ``failed_open`` (pattern retrieval was configured but did not answer in time, so the decision conditions
on the regime alone). A pattern library that is missing or unreadable does not stop the model: every
decision then fails open, and says so.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from omegaconf import OmegaConf

from dualhrq.config import build, check_targets
from dualhrq.errors import ConfigError, DataError
from dualhrq.features.engine import CloseFeatureSpec, IntradayFeatureSpec, Spec, compute_features, input_lookback
from dualhrq.pipeline.decision import DecisionPipeline
from dualhrq.serving.request import MARKET, VIX, RequestError, RequestSpec, check_request

log = logging.getLogger("dualhrq.serving")
SPEC = "serving.json"
OUTPUT_COLUMNS = ("ts", "symbol", "signal", "forecast", "segments", "failed_open")


def request_spec(spec: Spec, data_cfg: dict[str, Any], pipeline: DecisionPipeline) -> RequestSpec:
    """The request columns and history a model trained on ``data_cfg`` (features ``spec``) needs; refuses data
    whose features read more than a request's bars and daily auxiliary series."""
    if isinstance(spec, IntradayFeatureSpec):
        raise ConfigError("data.features: intraday features read session state and option chains that a request "
                          "of bars does not carry; only daily models are served. Fix: register a model trained on "
                          "daily bars (data=sp500_daily, sp500_stocks or parquet).", field="data.features")
    close_only = isinstance(spec, CloseFeatureSpec)
    market = close_only and bool(spec.market)
    vix = (not close_only) and bool(spec.use_vix)
    if vix and not data_cfg.get("vix"):
        raise ConfigError("data.vix: the features read VIX but the data config names no VIX source.",
                          field="data.vix")
    min_bars = input_lookback(spec) + int(pipeline.window["seq_len"])
    return RequestSpec.for_features(close_only, vix, market, pipeline.inputs.symbols, min_bars)


def feature_spec(features_cfg: dict[str, Any], trusted: Sequence[str] = ()) -> Spec:
    """The feature spec a run's ``data.features`` config node builds (its targets checked first)."""
    check_targets(features_cfg, trusted, where="data.features")
    return build(OmegaConf.create(features_cfg))


class ServedModel:
    """One fitted pipeline behind the request checks; :meth:`decide` is the whole served path."""

    def __init__(self, pipeline: DecisionPipeline, features_cfg: dict[str, Any], features: Spec,
                 request: RequestSpec, retrieval_expected: bool = False) -> None:
        self.pipeline = pipeline
        self.features_cfg = features_cfg  # the run's data.features node, saved with the model
        self.features = features
        self.request = request
        # a model trained with retrieval whose library could not be loaded: every decision fails open
        self.retrieval_expected = retrieval_expected or pipeline.module.retriever is not None
        self.timings_ms: dict[str, float] = {}

    @classmethod
    def for_data(cls, pipeline: DecisionPipeline, data_cfg: dict[str, Any], trusted: Sequence[str] = (),
                 retrieval_expected: bool = False) -> ServedModel:
        """``pipeline`` served on requests of the bars its run's data config ``data_cfg`` describes."""
        spec = feature_spec(data_cfg["features"], trusted)
        return cls(pipeline, data_cfg["features"], spec, request_spec(spec, data_cfg, pipeline), retrieval_expected)

    def decide(self, bars: pl.DataFrame) -> pl.DataFrame:
        """One decision per symbol of ``bars`` (a request), at its latest bar: :data:`OUTPUT_COLUMNS`."""
        t0 = time.perf_counter()
        frame = check_request(bars, self.request)
        aux = {name: frame.select("ts", name).unique("ts", keep="last").sort("ts")
               for name in self.request.auxiliary}
        features = compute_features(frame.select(self.request.bars), self.features,
                                    vix=aux.get(VIX), market=_closes(aux.get(MARKET)))
        t1 = time.perf_counter()
        samples = self.pipeline.windows(features)
        latest = _latest_per_symbol(samples.symbol_id, samples.t, frame, samples.symbols)
        retriever = self.pipeline.module.retriever
        answered = retriever.stats()["ok"] if retriever is not None else 0.0
        out = self.pipeline.predict(samples, latest, stride=1, online=True)
        t2 = time.perf_counter()
        failed_open = self.retrieval_expected and (retriever is None or retriever.stats()["ok"] == answered)
        self.timings_ms = {"features_ms": (t1 - t0) * 1e3, "model_ms": (t2 - t1) * 1e3}
        return pl.DataFrame({
            "ts": samples.t[latest], "symbol": np.asarray(samples.symbols)[samples.symbol_id[latest]],
            "signal": out.signal.astype(np.float64),
            "forecast": (out.forecast_z[:, 0] * self.pipeline.inputs.target_scale).astype(np.float64),
            "segments": out.steps.astype(np.int64), "failed_open": np.full(len(latest), failed_open),
        }).with_columns(pl.col("ts").cast(pl.Datetime("us")))

    # ---- persistence ------------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """The pipeline's files and ``serving.json`` (the feature spec's config and the request spec)."""
        out = self.pipeline.save(directory)
        (out / SPEC).write_text(json.dumps({"features": self.features_cfg, "request": self.request.to_dict()},
                                           indent=1))
        return out

    @classmethod
    def load(cls, directory: str | Path, trusted: Sequence[str] = ()) -> ServedModel:
        """Read a served model; a pattern library that cannot be read leaves retrieval failed open."""
        path = Path(directory)
        if not (path / SPEC).is_file():
            raise DataError(f"{path} holds no served model ({SPEC} is missing). Fix: point at a registered model's "
                            "data directory.")
        meta = json.loads((path / SPEC).read_text())
        try:
            pipeline, expected = DecisionPipeline.load(path, trusted=trusted), False
        except DataError as err:
            if "the pattern library cannot be read" not in str(err):
                raise
            log.warning("pattern library unusable, every decision fails open to regime-only conditioning: %s", err)
            pipeline, expected = DecisionPipeline.load(path, trusted=trusted, patterns=False), True
        return cls(pipeline, meta["features"], feature_spec(meta["features"], trusted),
                   RequestSpec(**meta["request"]), expected)


def _closes(series: pl.DataFrame | None) -> pl.DataFrame | None:
    return None if series is None else series.rename({MARKET: "close"})


def _latest_per_symbol(symbol_id: np.ndarray, t: np.ndarray, frame: pl.DataFrame, symbols: list[str]) -> np.ndarray:
    """Index of each symbol's decision at its latest bar; a symbol whose latest bar has no full window of
    finite features is refused."""
    last_bar = dict(frame.group_by("symbol").agg(pl.col("ts").max()).iter_rows())
    index = []
    for k, name in enumerate(symbols):
        rows = np.flatnonzero(symbol_id == k)
        if len(rows) == 0 or t[rows].max() != np.datetime64(last_bar[name], "us"):
            raise RequestError(f"symbol {name}: its latest bar has no full window of finite features (a gap or "
                               "warm-up inside the last bars). Fix: send more history, without gaps.", field="ts")
        index.append(rows[np.argmax(t[rows])])
    return np.asarray(index, dtype=np.int64)
