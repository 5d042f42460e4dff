"""The whole decision path, features of one bar to signal, with retrieval and with retrieval failed open.

Setup (not timed): the bundled daily data, the last CPCV fold's conditioning
(regime labels, pattern encoder and library fitted on its training part) and
an untrained model of ``--model`` with ``model/conditioning=regime_rag``;
untrained ACT never halts early, so every decision runs all segments (the
slowest case). Timed per decision, for the ``--decisions`` latest test bars of
one symbol, batch of one: the features of the trailing bar buffer (polars,
VIX joined), standardisation, the pattern query (PCA of the multi-scale
windows), the point-in-time retrieval through the breaker, and the network
to the signal. Modes: ``retrieval`` (breaker closed), ``failed_open`` (breaker
open: retrieval skipped, regime-only conditioning) and ``timeout`` (an index
slower than the time limit: the step waits ``timeout_ms``, then fails open).
Prints one JSON line with p50/p95 per mode against the design's 100 ms (with
retrieval) and 80 ms (failed open).

    OMP_NUM_THREADS=1 python benchmarks/decision_path.py --model hrm_tiny
    OMP_NUM_THREADS=1 python benchmarks/decision_path.py --model hrm_27m --decisions 30
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import polars as pl
import torch

from dualhrq.config import build, compose_train
from dualhrq.features.engine import compute_features, feature_names
from dualhrq.patterns.breaker import BreakerConfig
from dualhrq.patterns.retrieval import PatternRetriever
from dualhrq.training.conditioning import ConditioningFit, fit_fold_conditioning
from dualhrq.training.fold import fit_inputs
from dualhrq.validation.folds import make_folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrm_tiny")
    parser.add_argument("--decisions", type=int, default=60)
    parser.add_argument("--symbol", default="SP500")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    cfg = compose_train([f"model={args.model}", "model/conditioning=regime_rag"])
    dm = build(cfg.data)
    s = dm.prepare()
    folds = make_folds(build(cfg.validation.splitter), s.t, s.t1, cfg.validation.val_fraction,
                       s.t0)
    fold = folds[-1]
    cond_cfg = ConditioningFit.from_config(cfg.model.conditioning)
    cond = fit_fold_conditioning(cond_cfg, s, fold)
    inputs = fit_inputs(s, fold, cond)
    dm.set_fold(fold, inputs, labels=cond.labels)
    model = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                  n_symbols=dm.n_symbols, target_scale=inputs.target_scale)
    model.eval()
    retriever = PatternRetriever(cond.library, cond_cfg.retrieval)
    model.attach_retriever(retriever)

    # the transforms fitted on the fold's training part (the fold's decision pipeline inputs): pooled feature
    # z-scores, this symbol's regime-input and pattern-query z-scores, the screened regime columns, the encoder
    sym = s.symbols.index(args.symbol)
    features, regime_inputs, queries = inputs.features, cond.regime_inputs, cond.queries
    cols, _ = feature_names(dm.spec)
    n_regime = dm.n_regime_features

    bars = dm.bars.filter(pl.col("symbol") == args.symbol)
    vix = dm.vix() if dm.vix is not None else None
    warm = s.seq_len + dm.spec.long + 5
    test_t = np.sort(s.t[fold.test][s.symbol_id[fold.test] == sym])[-args.decisions:]
    buffers = []
    for t in test_t:
        buf = bars.filter(pl.col("ts") <= t).tail(warm)
        buffers.append((t, buf, None if vix is None else vix.filter(pl.col("ts") <= t).tail(warm)))

    def decide(t, buf, vix_buf) -> float:
        """Milliseconds spent in the features; the signal is computed and discarded."""
        t0 = time.perf_counter()
        frame = compute_features(buf, dm.spec, vix_buf)
        raw = frame.select(cols).to_numpy().astype(np.float32)
        features_ms = (time.perf_counter() - t0) * 1e3
        window = raw[-s.seq_len:]
        x = features.transform(window)
        regime = regime_inputs.scaler.transform(raw[-1:, -n_regime:], np.array([sym]))[0]
        regime[~regime_inputs.keep] = 0.0
        pattern_rows = np.nan_to_num(queries.scaler.transform(window, np.full(len(window), sym)))
        query = queries.encoder.embed(pattern_rows, np.array([s.seq_len - 1]))
        batch = {"x": torch.from_numpy(x)[None],
                 "regime": torch.from_numpy(np.nan_to_num(regime))[None], "symbol": torch.tensor([sym]),
                 "query": torch.from_numpy(query), "t": torch.tensor([np.datetime64(t, "us").astype(np.int64)])}
        with torch.inference_mode():
            float(model(batch).signal[0])
        return features_ms

    def timed() -> dict[str, float]:
        decide(*buffers[0])  # warm-up
        lat, feat = [], []
        for b in buffers:
            t0 = time.perf_counter()
            feat.append(decide(*b))
            lat.append((time.perf_counter() - t0) * 1e3)
        return {"p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
                "features_p50_ms": round(float(np.percentile(feat, 50)), 2)}

    results = {"retrieval": timed()}
    ok_before = retriever.stats()["ok"]
    retriever.fail_open.breaker.opened_at = time.monotonic() + 1e9  # forced open: every step skips retrieval
    results["failed_open"] = timed()
    # a search slower than the time limit; the breaker's threshold is lifted so every step waits it out
    retriever.fail_open.breaker.success()
    fast = cond.library.search
    cond.library.search = lambda q, t, k=None: (time.sleep(1.0), fast(q, t, k))[1]
    retriever.fail_open.breaker.cfg = BreakerConfig(timeout_ms=cond_cfg.retrieval.timeout_ms,
                                                    failure_threshold=10**9)
    results["timeout"] = timed()
    stats = retriever.stats()
    print(json.dumps({
        "benchmark": "decision_path", "model": args.model, "params": sum(p.numel() for p in model.net.parameters()),
        "data": dm.name, "symbol": args.symbol, "decisions": len(buffers), "library_size": len(cond.library),
        "index": cond_cfg.patterns.library.index.resolve(len(cond.library)),
        "timeout_ms": cond_cfg.retrieval.timeout_ms, "act_segments": model.act.halt_max_steps,
        "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg()[0],
        **results, "design_ms": {"retrieval": 100, "failed_open": 80},
        "retrieval_ok_closed": ok_before, "breaker": {k: stats[k] for k in ("timeouts", "skipped", "breaker_trips")},
    }))
    retriever.fail_open.close()


if __name__ == "__main__":
    main()
