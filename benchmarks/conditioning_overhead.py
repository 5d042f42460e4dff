"""What conditioning adds to the main job (``+experiment=regime_film``), per fold and per step.

On the bundled daily data, for CPCV fold ``--fold``: the time to fit the
fold's conditioning (regime labels; plus encoder and pattern library for
``regime_rag``), the retrieval per training batch (batch 32, through the
breaker) p50/p99 over ``--batches`` batches, and the end-of-fold report (the
context over the test block and the three MI estimates); against one
training segment of ``--model`` (forward and backward, batch 32), which the
job runs 4 times per batch. Prints one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/conditioning_overhead.py --model hrm_27m
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np
import torch

from dualhrq.config import build, compose_train
from dualhrq.patterns.retrieval import PatternRetriever
from dualhrq.training.conditioning import ConditioningFit, fit_fold_conditioning
from dualhrq.training.conditioning_report import conditioning_report
from dualhrq.training.fold import fit_inputs
from dualhrq.validation.folds import make_folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrm_27m")
    parser.add_argument("--fold", type=int, default=2)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = compose_train(["+experiment=regime_film", f"model={args.model}", "model/conditioning=regime_rag"])
    dm = build(cfg.data)
    s = dm.prepare()
    fold = make_folds(build(cfg.validation.splitter), s.t, s.t1, cfg.validation.val_fraction,
                       s.t0)[args.fold]
    cond_cfg = ConditioningFit.from_config(cfg.model.conditioning)
    # model/conditioning=regime fits the same labels without the patterns
    variants = {"regime": dataclasses.replace(cond_cfg, patterns=None, retrieval=None), "regime_rag": cond_cfg}
    fit_s = {}
    for kind, variant in variants.items():
        start = time.perf_counter()
        cond = fit_fold_conditioning(variant, s, fold)
        fit_s[kind] = round(time.perf_counter() - start, 2)
    inputs = fit_inputs(s, fold, cond)
    dm.set_fold(fold, inputs, labels=cond.labels)
    extras = inputs.arrays(s).extras  # every sample's query and decision time
    model = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                  n_symbols=dm.n_symbols, target_scale=inputs.target_scale)
    retriever = PatternRetriever(cond.library, cond_cfg.retrieval)
    model.attach_retriever(retriever)

    rng = np.random.default_rng(0)
    batch_size = int(cfg.data.batch_size)
    lat = []
    for _ in range(args.batches):
        b = rng.choice(fold.train, batch_size)
        start = time.perf_counter()
        retriever(extras["query"][b], extras["t"][b])
        lat.append((time.perf_counter() - start) * 1e3)

    start = time.perf_counter()
    report = conditioning_report(model, dm.test_dataloader(), s.symbol_id[fold.test], s.t[fold.test])
    report_s = time.perf_counter() - start

    batch = next(iter(dm.train_dataloader()))
    model.train()
    segment = []
    for _ in range(2):
        start = time.perf_counter()
        out = model.net(batch["x"], batch["regime"], batch["symbol"], None, patterns=model.patterns(batch))
        model.loss_terms(out, batch)["loss"].backward()
        segment.append(time.perf_counter() - start)
    print(json.dumps({
        "benchmark": "conditioning_overhead", "model": args.model, "data": dm.name, "fold": args.fold,
        "n_train": len(fold.train), "n_test": len(fold.test), "library_size": len(cond.library),
        "index": cond_cfg.patterns.library.index.resolve(len(cond.library)), "batch": batch_size,
        "fit_fold_conditioning_s": fit_s, "retrieval_per_batch_ms": {
            "p50": round(float(np.percentile(lat, 50)), 2), "p99": round(float(np.percentile(lat, 99)), 2)},
        "report_s": round(report_s, 2), "training_segment_s": round(min(segment), 2),
        "retrieval_share_of_batch": round(float(np.percentile(lat, 50)) / 1e3 / (4 * min(segment)), 5),
        "mi_symbol_bits_untrained": round(report["conditioning/mi_symbol_bits"], 4),
        "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg()[0],
    }))
    retriever.fail_open.close()


if __name__ == "__main__":
    main()
