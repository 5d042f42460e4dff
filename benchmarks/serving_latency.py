"""End-to-end latency of a served decision, batch 1: in process and over HTTP (MLflow's own server).

Setup (not timed): the bundled daily data, the last CPCV fold's conditioning
(regime labels, pattern encoder and library fitted on its training part) and
an untrained ``--model`` with ``model/conditioning=regime_rag``, packaged as
the registry packages a model (``dualhrq.registry.package.model_files``) and
saved twice: whole, and with its pattern index removed (every decision fails
open to regime-only conditioning, and says so). Untrained ACT rarely halts
early, so decisions run up to all segments: the slow case.

Timed, for ``--requests`` requests of one symbol, each the bars a decision
needs ending on one of the latest dates: the whole served path in process
(request checks and features, the fitted transforms, retrieval through the
breaker, each ACT segment), and the same requests posted to
``mlflow models serve --env-manager local``. Prints one JSON line: p50, p95
and p99 per mode and path against the design's 100 ms (with retrieval) and
80 ms (failed open), and where the time goes (p50 of each stage; ``http`` is
the HTTP p50 less the in-process p50).

    python benchmarks/serving_latency.py --model hrm_tiny
    python benchmarks/serving_latency.py --model hrm_27m --requests 30
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import requests
import torch
from omegaconf import OmegaConf

from dualhrq.config import build, compose_train
from dualhrq.models.precision import resolve_precision
from dualhrq.patterns.retrieval import PatternRetriever
from dualhrq.pipeline.decision import DecisionPipeline
from dualhrq.registry.package import model_files, request_frame
from dualhrq.serving.model import ServedModel
from dualhrq.training.conditioning import ConditioningFit, fit_fold_conditioning
from dualhrq.training.fold import fit_inputs
from dualhrq.validation.folds import make_folds

DESIGN_MS = {"retrieval": 100.0, "failed_open": 80.0}


def served_model(model: str) -> tuple[ServedModel, pl.DataFrame]:
    """An untrained ``model`` behind the last fold's fitted inputs and pattern library, and every bar of the
    data as requests carry them."""
    cfg = compose_train([f"model={model}", "model/conditioning=regime_rag"])
    dm = build(cfg.data)
    s = dm.prepare()
    fold = make_folds(build(cfg.validation.splitter), s.t, s.t1, cfg.validation.val_fraction, s.t0)[-1]
    cond_fit = ConditioningFit.from_config(cfg.model.conditioning)
    cond = fit_fold_conditioning(cond_fit, s, fold)
    inputs = fit_inputs(s, fold, cond, cond_fit.max_input_mi_bits)
    net = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                n_symbols=len(s.symbols), target_scale=inputs.target_scale)
    net.attach_retriever(PatternRetriever(cond.library, cond_fit.retrieval))
    window = {"feature_names": s.feature_names, "regime_names": s.regime_names, "seq_len": s.seq_len,
              "horizon": s.horizon}
    pipeline = DecisionPipeline(inputs, net, OmegaConf.to_container(cfg.model, resolve=True), window,
                                precision=cfg.trainer.precision)
    served = ServedModel.for_data(pipeline, OmegaConf.to_container(cfg.data, resolve=True))
    return served, request_frame(cfg, served.request)


def requests_of(frame: pl.DataFrame, symbol: str, n: int, min_bars: int) -> list[pl.DataFrame]:
    """``n`` requests of one symbol: the ``min_bars`` bars ending on each of its ``n`` latest dates."""
    bars = frame.filter(pl.col("symbol") == symbol)
    return [bars.slice(end - min_bars, min_bars) for end in range(bars.height - n + 1, bars.height + 1)]


class StageClock:
    """Per request: the time in retrieval and in each network call (one per ACT segment)."""

    def __init__(self, served: ServedModel) -> None:
        self.retrieval: list[float] = []
        self.segments: list[float] = []
        module = served.pipeline.module
        patterns = module.patterns

        def timed_patterns(batch):
            t0 = time.perf_counter()
            try:
                return patterns(batch)
            finally:
                self.retrieval.append((time.perf_counter() - t0) * 1e3)

        module.patterns = timed_patterns
        module.net.register_forward_pre_hook(lambda *_: setattr(self, "_t0", time.perf_counter()))
        module.net.register_forward_hook(lambda *_: self.segments.append((time.perf_counter() - self._t0) * 1e3))

    def reset(self) -> None:
        self.retrieval, self.segments = [], []


def in_process(served: ServedModel, reqs: list[pl.DataFrame]) -> dict:
    clock = StageClock(served)
    served.decide(reqs[0])  # warm-up
    total, features, retrieval, segments, rest, used, failed = [], [], [], [], [], [], []
    for req in reqs:
        clock.reset()
        t0 = time.perf_counter()
        out = served.decide(req)
        total.append((time.perf_counter() - t0) * 1e3)
        features.append(served.timings_ms["features_ms"])
        retrieval.append(sum(clock.retrieval))
        segments += clock.segments
        rest.append(served.timings_ms["model_ms"] - sum(clock.retrieval) - sum(clock.segments))
        used.append(int(out["segments"][0]))
        failed.append(bool(out["failed_open"][0]))
    return {**_percentiles(total), "failed_open_share": float(np.mean(failed)),
            "segments_mean": float(np.mean(used)),
            "stages_p50_ms": {"features": _r(np.percentile(features, 50)),
                              "retrieval": _r(np.percentile(retrieval, 50)), "segment": _r(np.percentile(segments, 50)),
                              "windows_and_inputs": _r(np.percentile(rest, 50))}}


def over_http(model_dir: Path, reqs: list[pl.DataFrame], workdir: Path) -> dict:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = open(workdir / f"serve-{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
                             "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if requests.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError((workdir / f"serve-{port}.log").read_text()[-2000:]) from None
                time.sleep(0.5)
        session = requests.Session()
        bodies = [json.dumps({"dataframe_split": r.with_columns(pl.col("ts").dt.strftime("%Y-%m-%d")).to_pandas()
                              .to_dict(orient="split")}) for r in reqs]
        headers = {"Content-Type": "application/json"}
        session.post(f"{url}/invocations", data=bodies[0], headers=headers).raise_for_status()  # warm-up
        total, failed = [], []
        for body in bodies:
            t0 = time.perf_counter()
            answer = session.post(f"{url}/invocations", data=body, headers=headers)
            total.append((time.perf_counter() - t0) * 1e3)
            answer.raise_for_status()
            failed.append(answer.json()["predictions"][0]["failed_open"])
        return {**_percentiles(total), "failed_open_share": float(np.mean(failed))}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def _percentiles(ms: list[float]) -> dict[str, float]:
    return {f"p{q}_ms": _r(np.percentile(ms, q)) for q in (50, 95, 99)}


def _r(x: float) -> float:
    return round(float(x), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrm_tiny")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--symbol", default="SP500")
    args = parser.parse_args()

    served, frame = served_model(args.model)
    reqs = requests_of(frame, args.symbol, args.requests, served.request.min_bars)
    with tempfile.TemporaryDirectory(prefix="serving-latency-") as tmp:
        work = Path(tmp)
        whole = work / "whole"
        mlflow.pyfunc.save_model(str(whole), **model_files(served, reqs[0], work / "files"))
        blind = work / "no_index"
        shutil.copytree(whole, blind)
        for index in blind.rglob("index.faiss"):
            index.unlink()  # the pattern index is gone: every decision fails open
        results = {}
        for mode, model_dir in (("retrieval", whole), ("failed_open", blind)):
            local = in_process(ServedModel.load(next(model_dir.rglob("serving.json")).parent), reqs)
            http = over_http(model_dir, reqs, work)
            local["stages_p50_ms"]["http"] = _r(http["p50_ms"] - local["p50_ms"])
            results[mode] = {"in_process": local, "http": http, "design_ms": DESIGN_MS[mode],
                             "within_design_p95": {"in_process": local["p95_ms"] <= DESIGN_MS[mode],
                                                   "http": http["p95_ms"] <= DESIGN_MS[mode]}}
    print(json.dumps({
        "benchmark": "serving_latency", "model": args.model,
        "params": sum(p.numel() for p in served.pipeline.module.net.parameters()),
        "precision": resolve_precision(served.pipeline.precision), "requests": len(reqs),
        "bars_per_request": served.request.min_bars, "symbol": args.symbol,
        "library_size": len(served.pipeline.module.retriever.library),
        "act_max_segments": served.pipeline.module.act.halt_max_steps,
        "torch_threads": torch.get_num_threads(), "load_avg": round(os.getloadavg()[0], 2), **results,
    }))


if __name__ == "__main__":
    main()
