"""Strided prediction against one window per decision: the out-of-sample prediction of a CPCV test block.

Setup (not timed): the bundled daily data, the last CPCV fold's regime conditioning and fitted inputs, and an
untrained densely supervised model of ``--model`` in a decision pipeline (untrained ACT never halts early, so
every window runs all segments, the same at every stride). Timed: ``DecisionPipeline.predict`` of the fold's
test samples at stride 1 and at each of ``--strides`` (best of ``--repeats``, all in one run). Prints one JSON
line: seconds and windows per stride and the speed-up over stride 1.

    OMP_NUM_THREADS=1 python benchmarks/strided_prediction.py --model hrm_tiny
    OMP_NUM_THREADS=1 python benchmarks/strided_prediction.py --model hrm_27m --strides 8 24 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import torch

from dualhrq.config import build, compose_train
from dualhrq.data.dense import strided_windows
from dualhrq.pipeline.decision import DecisionPipeline
from dualhrq.training.conditioning import ConditioningFit, fit_fold_conditioning
from dualhrq.training.fold import fit_inputs
from dualhrq.validation.folds import make_folds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hrm_tiny")
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 8, 24])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    cfg = compose_train([f"model={args.model}", "model.supervision.dense=true", "trainer.precision=32-true"])
    dm = build(cfg.data)
    s = dm.prepare()
    fold = make_folds(build(cfg.validation.splitter), s.t, s.t1, cfg.validation.val_fraction, s.t0)[-1]
    cond = fit_fold_conditioning(ConditioningFit.from_config(cfg.model.conditioning), s, fold)
    inputs = fit_inputs(s, fold, cond)
    torch.manual_seed(0)
    model = build(cfg.model, n_features=dm.n_features, n_regime_features=dm.n_regime_features,
                  n_symbols=dm.n_symbols, target_scale=inputs.target_scale)
    pipeline = DecisionPipeline(inputs, model, {}, {}, eval_batch_size=cfg.data.eval_batch_size,
                                precision="32-true")

    def best(stride: int) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            pipeline.predict(s, fold.test, stride=stride)
            times.append(time.perf_counter() - start)
        return min(times)

    seconds = {stride: best(stride) for stride in [1, *args.strides]}
    print(json.dumps({
        "benchmark": "strided_prediction", "model": args.model, "decisions": len(fold.test),
        "seq_len": s.seq_len, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "windows": {str(k): len(strided_windows(s, fold.test, k).windows) for k in seconds},
        "seconds": {str(k): round(v, 4) for k, v in seconds.items()},
        "speedup": {str(k): round(seconds[1] / v, 2) for k, v in seconds.items() if k != 1}}))


if __name__ == "__main__":
    main()
