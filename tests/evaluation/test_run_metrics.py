"""The catalogue of run metrics per data/backtest combination, and the gate set it gives each job.

That the catalogue equals what real jobs log is checked on the runs of tests/evaluation/test_run_end.py,
tests/e2e/test_conditioning_job.py and tests/portfolio/test_strict_sim.py.
"""

import pytest
from omegaconf import OmegaConf

from dualhrq.config import compose_train
from dualhrq.errors import ConfigError
from dualhrq.evaluation.run_end import check_evaluation_config
from dualhrq.evaluation.run_metrics import PATTERNS, REGIME, SIM, run_metrics
from dualhrq.validation.gates import LEFT_OUT, evaluate_gates, gates_from_config


def _gates(cfg):
    catalogue = run_metrics(cfg)
    gates = gates_from_config(OmegaConf.to_container(cfg.validation.gates, resolve=True), known=catalogue.known)
    return catalogue, {r.gate.name: r for r in evaluate_gates(gates, {}, catalogue.never)}


def test_the_main_job_leaves_out_only_the_gate_its_daily_replay_can_never_evaluate():
    catalogue, results = _gates(compose_train(["+experiment=regime_film"]))
    assert [n for n, r in results.items() if r.status == LEFT_OUT] == ["sim_violations"]
    assert "backtest=strict_sim" in results["sim_violations"].reason
    # every other gate reads a metric the job logs, so each can pass under validation.strict=true
    assert all(r.gate.metric in catalogue.logged for n, r in results.items() if n != "sim_violations")
    assert {"regime/switches_per_day", "conditioning/mi_symbol_bits", "params/total"} <= catalogue.logged
    assert not (SIM | PATTERNS) & catalogue.logged


@pytest.mark.parametrize("overrides,logged,left_out", [
    (["backtest=strict_sim", "data=synthetic_intraday"], SIM | REGIME, set()),
    (["model/conditioning=none"], frozenset({"conditioning/mi_symbol_bits"}), {"regime_switches", "sim_violations"}),
    (["model/conditioning=puzzle_id"], frozenset(), {"regime_switches", "sim_violations"}),
    (["model/conditioning=regime_rag"], REGIME | PATTERNS, {"sim_violations"}),
])
def test_each_combination_logs_its_families_and_leaves_out_the_rest(overrides, logged, left_out):
    catalogue, results = _gates(compose_train(["model=hrm_tiny", *overrides]))
    assert logged <= catalogue.logged and not catalogue.logged & set(catalogue.never)
    assert {n for n, r in results.items() if r.status == LEFT_OUT} == left_out
    if "regime_switches" in left_out:
        assert "model/conditioning=regime" in results["regime_switches"].reason


def test_baseline_metrics_follow_the_configured_baselines():
    with_momentum = run_metrics(compose_train(["model=hrm_tiny"])).logged
    without = run_metrics(compose_train(["model=hrm_tiny", "validation.baselines.momentum=null"])).logged
    assert {"vs/momentum/spa_pvalue", "baseline/momentum/sharpe"} <= with_momentum - without
    assert "vs/buy_and_hold/rc_pvalue" in without


@pytest.mark.parametrize("override,message", [
    ("validation.gates.spa.metric=oos/spa_pvalu",
     r"^validation\.gates\.spa\.metric: no part of this job logs a run metric 'oos/spa_pvalu'\. Known: .*"
     r"oos/spa_pvalue.*validation\.gates\.spa\.external=true"),
    ("+validation.gates.spa.above=0.5", r"^validation\.gates\.spa: bounds contradict each other"),
    ("validation.gates.max_drawdown.metric=patterns/siz", r"validation\.gates\.max_drawdown\.metric"),
])
def test_gate_config_is_refused_before_the_job_runs(override, message):
    with pytest.raises(ConfigError, match=message):
        check_evaluation_config(compose_train(["model=hrm_tiny", override]))


def test_a_metric_of_another_combination_is_known_and_an_external_one_is_declared():
    # patterns/size exists, just not in this job: accepted, then left out; an external metric is taken as declared
    cfg = compose_train(["model=hrm_tiny", "+validation.gates.lib={metric:patterns/size,above:0}",
                         "+validation.gates.mine={metric:ext/checked,at_most:0,external:true}"])
    check_evaluation_config(cfg)
    _, results = _gates(cfg)
    assert results["lib"].status == LEFT_OUT and "regime_rag" in results["lib"].reason
    assert results["mine"].status != LEFT_OUT
