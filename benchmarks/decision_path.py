"""The whole decision path, features of one bar to signal, with retrieval and with retrieval failed open.

Setup (not timed): the bundled daily data, the last CPCV fold's conditioning
(regime labels, pattern encoder and library fitted on its training part) and
an untrained model of ``--model`` with ``model.conditioning=regime_rag``;
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
from dualhrq.models.conditioning.breaker import BreakerConfig
from dualhrq.models.conditioning.config import CondConfig
from dualhrq.models.conditioning.fold_fit import fit_fold_conditioning
from dualhrq.models.conditioning.rag import PatternRetriever
from dualhrq.validation.folds import make_folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrm_tiny")
    parser.add_argument("--decisions", type=int, default=60)
    parser.add_argument("--symbol", default="SP500")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    cfg = compose_train([f"model={args.model}", "model.conditioning=regime_rag"])
    dm = build(cfg.data)
    s = dm.prepare()
    folds = make_folds(build(cfg.validation.splitter), s.t, s.t1, cfg.validation.val_fraction)
    fold = folds[-1]
    cond_cfg = CondConfig.from_config(cfg.model.cond)
    cond = fit_fold_conditioning("regime_rag", cond_cfg, s, fold, *dm.rows)
    dm.set_fold(fold, extras=cond.extras)
    model = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                  n_symbols=dm.n_symbols, target_scale=dm.target_scale)
    model.eval()
    retriever = PatternRetriever(cond.library, cond_cfg.retrieval)
    model.attach_retriever(retriever)

    # the standardisations fitted on the fold's training part (as the datamodule and fold_fit do)
    sym = s.symbols.index(args.symbol)
    train_rows = np.unique((s.end_row[fold.train, None] - np.arange(s.seq_len)[None, :]).ravel())
    f_mean, f_std = s.features[train_rows].mean(0), s.features[train_rows].std(0)
    row_symbol = dm.rows[0]
    own = train_rows[row_symbol[train_rows] == sym]
    p_mean, p_std = s.features[own].mean(0), s.features[own].std(0)
    own_dec = s.end_row[fold.train][row_symbol[s.end_row[fold.train]] == sym]
    r_mean, r_std = s.regime[own_dec].mean(0), s.regime[own_dec].std(0)
    indicator = np.array([len(np.unique(s.regime[s.end_row[fold.train], j])) <= 2 for j in range(s.regime.shape[1])])
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
        x = (window - f_mean) / np.where(f_std > 1e-12, f_std, 1.0)
        regime = (raw[-1, -n_regime:] - r_mean) / np.where(r_std > 1e-12, r_std, 1.0)
        regime[indicator] = 0.0
        pattern_rows = (window - p_mean) / np.where(p_std > 1e-12, p_std, 1.0)
        query = cond.encoder.embed(pattern_rows.astype(np.float32), np.array([s.seq_len - 1]))
        batch = {"x": torch.from_numpy(x.astype(np.float32))[None],
                 "regime": torch.from_numpy(regime.astype(np.float32))[None], "symbol": torch.tensor([sym]),
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
