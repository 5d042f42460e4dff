"""``python -m dualhrq.backtest``: replay a finished training run's out-of-sample signals and log the result.

The signals come from the training run's ``oos_predictions.parquet`` MLflow
artifact (``run_id=...``) or a file (``predictions=...``); with
``signals=pipeline`` they are made again by the run's saved decision
pipelines (artifacts ``checkpoints/fold<i>``) on the run's data and folds;
with ``adversarial=true`` they are the rule-testing signal that shorts after
every falling bar of the configured market. They are replayed
by ``build(cfg.backtest).run``, the same call the training job makes for its
evaluation. Where folds predicted the same (ts, symbol), the lowest fold's
signal is kept, so every decision is replayed once. The run logs the
book's metrics, the rule counts (fills, rejections by reason, violations),
the daily violation report, every order with its fill or rejection, the
per-step P&L and costs, and the equity, drawdown and exposure plots. With
``options.enabled`` Book A (``portfolio.book_a``) runs on the option chain
of the same market, symbols and days, and its Greek P&L attribution is
logged alongside.
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig

from dualhrq.errors import DualHRQError
from dualhrq.evaluation.replay import replay

log = logging.getLogger("dualhrq.backtest")


@hydra.main(version_base="1.3", config_path="../conf", config_name="replay.yaml")
def main(cfg: DictConfig) -> float:
    try:
        return float(replay(cfg)["bt/sharpe"])
    except DualHRQError as err:
        log.error("%s: %s", type(err).__name__, err)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
