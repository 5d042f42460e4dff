"""Gates: bounds at their edges, missing evidence never passes, malformed config refused, the shipped set."""

import math

import pytest
from omegaconf import OmegaConf

from dualhrq.config import CONF_DIR, compose_train
from dualhrq.errors import ConfigError
from dualhrq.primitives.tables import format_table
from dualhrq.validation.gates import (
    FAIL,
    LEFT_OUT,
    NOT_EVALUATED,
    PASS,
    Gate,
    evaluate_gates,
    gate_metrics,
    gate_rows,
    gate_tags,
    gates_from_config,
    left_out_notes,
    unmet,
)


def _status(gate, value):
    metrics = {} if value is None else {gate.metric: value}
    return evaluate_gates([gate], metrics)[0].status


def test_strict_and_inclusive_bounds_at_their_edges():
    below = Gate("dd", "oos/max_drawdown", below=0.15)
    assert [_status(below, v) for v in (0.1499, 0.15, 0.2)] == [PASS, FAIL, FAIL]
    above = Gate("imp", "oos/sharpe_improvement", above=0.10)
    assert [_status(above, v) for v in (0.1001, 0.10, -1.0)] == [PASS, FAIL, FAIL]
    at_most = Gate("sim", "sim/violations", at_most=0)
    assert [_status(at_most, v) for v in (0.0, 1.0)] == [PASS, FAIL]
    band = Gate("params", "params/total", at_least=10, at_most=20)
    assert [_status(band, v) for v in (9, 10, 20, 21)] == [FAIL, PASS, PASS, FAIL]
    assert band.rule() == "params/total >= 10 and params/total <= 20"


def test_missing_or_non_finite_metric_is_not_evaluated_never_passed():
    gate = Gate("mi", "conditioning/mi_symbol_bits", below=0.1)
    for value in (None, math.nan, math.inf):
        assert _status(gate, value) == NOT_EVALUATED


def test_metrics_and_tags_of_results():
    gates = [Gate("a", "x", below=1), Gate("b", "y", below=1), Gate("c", "z", below=1), Gate("d", "w", below=1)]
    results = evaluate_gates(gates, {"x": 0.5, "y": 2.0, "w": 0.0}, {"w": "is never logged here"})
    assert [r.status for r in results] == [PASS, FAIL, NOT_EVALUATED, LEFT_OUT]
    assert gate_metrics(results) == {"gate/a": 1.0, "gate/b": 0.0, "gates/passed": 1.0, "gates/failed": 1.0,
                                     "gates/not_evaluated": 1.0, "gates/left_out": 1.0}
    assert gate_tags(results) == {"gate.a": PASS, "gate.b": FAIL, "gate.c": NOT_EVALUATED, "gate.d": LEFT_OUT}
    assert [r["value"] for r in gate_rows(results)] == [0.5, 2, None, None]  # whole numbers shown as integers
    assert format_table(gate_rows(results)).splitlines()[2:] == [
        "a     x < 1      0.5000  PASS", "b     y < 1           2  FAIL", "c     z < 1           -  not evaluated",
        "d     w < 1           -  left out"]
    assert left_out_notes(results) == ["d left out: w is never logged here"]
    # what validation.strict=true refuses: a failure and a verdict never reached, not a gate left out
    assert [r.gate.name for r in unmet(results)] == ["b", "c"]


def test_an_external_gate_is_never_left_out():
    gate = Gate("ext", "sim/violations", at_most=0, external=True)
    assert evaluate_gates([gate], {"sim/violations": 0.0}, {"sim/violations": "has no rule engine"})[0].status == PASS
    assert evaluate_gates([gate], {}, {"sim/violations": "has no rule engine"})[0].status == NOT_EVALUATED


@pytest.mark.parametrize("bounds,passing", [
    ({"above": 1, "below": 0}, None),
    ({"at_least": 1, "at_most": 0}, None),
    ({"above": 0.5, "below": 0.5}, None),
    ({"above": 0.5, "at_most": 0.5}, None),
    ({"at_least": 0.5, "below": 0.5}, None),
    ({"at_least": 0.5, "above": 0.5, "at_most": 0.5}, None),  # the strict lower bound binds
    ({"at_least": 0.5, "at_most": 0.5}, 0.5),  # exactly 0.5 passes
    ({"above": 0.4, "below": 0.5}, 0.45),
    ({"above": 0.4, "at_least": 0.45, "below": 0.5, "at_most": 0.6}, 0.45),
])
def test_contradictory_bounds_are_refused_at_their_edge(bounds, passing):
    spec = {"g": {"metric": "oos/psr", **bounds}}
    if passing is None:
        with pytest.raises(ConfigError, match=r"^validation\.gates\.g: bounds contradict each other"):
            gates_from_config(spec)
    else:
        (gate,) = gates_from_config(spec)
        assert _status(gate, passing) == PASS


def test_an_unknown_metric_is_refused_naming_the_field_and_the_known_names():
    known = {"oos/psr", "oos/dsr"}
    message = (r"^validation\.gates\.g\.metric: no part of this job logs a run metric 'oos/pssr'\. "
               r"Known: oos/dsr, oos/psr\. .*validation\.gates\.g\.external=true")
    with pytest.raises(ConfigError, match=message):
        gates_from_config({"g": {"metric": "oos/pssr", "above": 0.9}}, known=known)
    (gate,) = gates_from_config({"g": {"metric": "ext/mine", "above": 0.9, "external": True}}, known=known)
    assert gate.external
    with pytest.raises(ConfigError, match=r"validation\.gates\.g\.external"):
        gates_from_config({"g": {"metric": "ext/mine", "above": 0.9, "external": "yes"}}, known=known)


@pytest.mark.parametrize("spec,message", [
    ({"g": {"metric": "x"}}, "needs at least one bound"),
    ({"g": {"below": 1}}, r"validation\.gates\.g\.metric"),
    ({"g": {"metric": "x", "under": 1}}, "unknown keys"),
    ({"g": {"metric": "x", "below": "low"}}, r"validation\.gates\.g\.below"),
    ({"g": {"metric": "x", "below": True}}, r"validation\.gates\.g\.below"),
    ({"g": 0.1}, "must be a mapping"),
])
def test_malformed_gates_are_refused_naming_the_field(spec, message):
    with pytest.raises(ConfigError, match=message):
        gates_from_config(spec)


def test_shipped_gates_read_the_documented_metrics():
    cfg = compose_train(["model=hrm_tiny"])
    gates = {g.name: g for g in gates_from_config(OmegaConf.to_container(cfg.validation.gates, resolve=True))}
    assert {n: g.metric for n, g in gates.items()} == {
        "param_budget": "params/total", "sharpe_improvement": "oos/sharpe_improvement",
        "max_drawdown": "oos/max_drawdown", "spa": "oos/spa_pvalue", "reality_check": "oos/rc_pvalue",
        "regime_switches": "regime/switches_per_day", "inputs_mi": "inputs/mi_symbol_bits",
        "conditioning_mi": "conditioning/mi_symbol_bits", "sim_violations": "sim/violations"}
    assert (gates["param_budget"].at_least, gates["param_budget"].at_most) == (55e3, 70e3)  # hrm_tiny's budget
    assert gates["sharpe_improvement"].above == 0.10 and gates["max_drawdown"].below == 0.15
    assert gates["spa"].below == 0.10 and gates["reality_check"].below == 0.05
    assert gates["regime_switches"].below == 0.05 and gates["conditioning_mi"].below == 0.1
    assert gates["inputs_mi"].below == 0.1
    assert gates["sim_violations"].at_most == 0
    # the documentation in the YAML lists every metric a gate reads
    text = (CONF_DIR / "validation" / "gates" / "default.yaml").read_text()
    assert all(f"#   {g.metric}" in text for g in gates.values())


def test_a_gate_can_be_switched_off_or_moved_by_override():
    cfg = compose_train(["model=hrm_tiny", "~validation.gates.sim_violations", "validation.gates.spa.below=0.2"])
    gates = {g.name: g for g in gates_from_config(OmegaConf.to_container(cfg.validation.gates, resolve=True))}
    assert "sim_violations" not in gates and gates["spa"].below == 0.2


def test_gates_are_read_at_the_given_path():
    with pytest.raises(ConfigError, match=r"^replay\.gates\.dd\.at_most must be a finite number or null, got inf\."):
        gates_from_config({"dd": {"metric": "oos/max_drawdown", "at_most": math.inf}}, "replay.gates")
    (gate,) = gates_from_config({"dd": {"metric": "oos/max_drawdown", "at_most": 1}, "off": None})
    assert gate.at_most == 1.0 and isinstance(gate.at_most, float) and gate.name == "dd"
