"""The two controls end to end on hrm_tiny: shuffled training labels show no edge, a planted signal is found.

Thresholds come from the criteria, not from past runs: the canary is a 10%-level test run five times, so
more than one rejection in five is what a leak looks like (a clean pipeline does that with probability
1 - 0.9^5 - 5 * 0.1 * 0.9^4 = 8%, less where the SPA p-value is conservative); the planted market's
threshold is half its closed-form Sharpe bound (``dualhrq.data.planted``).
"""

from __future__ import annotations

import math

import pytest

from dualhrq.train import train

from .conftest import compose_tiny, runs_of

# the default bootstrap (500 reps, as the README commands run), and trials fixed so runs do not count each other
SETTINGS = ["validation.stats.bootstrap_reps=500", "validation.stats.n_trials=1", "validation.stats.sr_variance=0"]
EVIDENCE_GATES = ("param_budget", "sharpe_improvement", "max_drawdown", "spa", "reality_check")


@pytest.mark.slow
def test_shuffled_labels_show_no_edge_over_buy_and_hold(tmp_path):
    for seed in range(5):
        train(compose_tiny(tmp_path, ["+experiment=canary", f"seed={seed}", "trainer.max_steps=12",
                                      *SETTINGS], out=f"seed{seed}"))
    runs = runs_of(tmp_path, "canary")
    assert len(runs) == 5 and all(r.data.tags["control"] == "shuffle" for r in runs)
    pvalues = [r.data.metrics["oos/spa_pvalue"] for r in runs]
    assert sum(p < 0.1 for p in pvalues) <= 1, pvalues


@pytest.mark.slow
def test_the_pipeline_finds_a_planted_signal(tmp_path):
    train(compose_tiny(tmp_path, ["data=synthetic_planted", "data.batch_size=64", "task_name=planted",
                                  "trainer.max_steps=200", "validation.folds=[0,1]", *SETTINGS]))
    (run,) = runs_of(tmp_path, "planted")
    m, tags = run.data.metrics, run.data.tags
    bound = m["data/planted_sharpe_bound"]
    assert bound == pytest.approx(math.sqrt(2 * 252) * 0.005 / 0.01)  # 11.22, the config's market
    assert tags["data.synthetic"] == "True"
    assert m["oos/sharpe"] >= 0.5 * bound
    assert m["oos/spa_pvalue"] < 0.05
    assert {g: tags[f"gate.{g}"] for g in EVIDENCE_GATES} == dict.fromkeys(EVIDENCE_GATES, "PASS")
