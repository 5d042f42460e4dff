"""Success criteria of the design as configurable gates over a run's metrics.

A gate names one run metric (``oos/max_drawdown``, ``sim/violations``, ...)
and bounds it: ``above`` / ``below`` (strict) and ``at_least`` / ``at_most``
(inclusive). It passes when every bound holds, fails when one does not, and
is *not evaluated* when the run has no finite value for the metric: a
criterion whose evidence was never produced is never counted as met.
A gate whose metric the job's data/backtest combination can never produce
(the rule engine's counts without the rule engine) is *left out*, with the
reason, rather than reported as not evaluated in every run.
The gates live in ``conf/validation/gates/``; ``validation.strict=true`` turns a
gate that failed or was not evaluated into a non-zero exit.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from dualhrq.config import FINITE, NON_EMPTY, check_fields, located, parse
from dualhrq.errors import ConfigError

PASS, FAIL, NOT_EVALUATED, LEFT_OUT = "PASS", "FAIL", "not evaluated", "left out"
BOUNDS = {"above": ">", "below": "<", "at_least": ">=", "at_most": "<="}
_OPS = {"above": operator.gt, "below": operator.lt, "at_least": operator.ge, "at_most": operator.le}


class GatesFailed(RuntimeError):
    """Raised after a run under ``validation.strict=true`` when a gate failed or was not evaluated."""


@dataclass(frozen=True)
class Gate:
    """``metric`` must satisfy every bound given (None = no such bound).

    ``external``: the metric is logged to the run by something outside the
    training job (a step of your own writing to the same MLflow run), so it is
    not checked against the metrics the job itself logs.
    """

    name: str
    metric: Annotated[str, NON_EMPTY]
    above: Annotated[float, FINITE] | None = None
    below: Annotated[float, FINITE] | None = None
    at_least: Annotated[float, FINITE] | None = None
    at_most: Annotated[float, FINITE] | None = None
    description: str = ""
    external: bool = False

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.bounds():
            raise ConfigError(f"needs at least one bound: {', '.join(BOUNDS)}", field="")
        lows = [(float(v), k == "above") for k in ("above", "at_least") if (v := getattr(self, k)) is not None]
        highs = [(float(v), k == "below") for k in ("below", "at_most") if (v := getattr(self, k)) is not None]
        if lows and highs:
            low, low_strict = max(lows)  # at a tie the strict bound sorts last and binds
            high, high_strict = min(highs, key=lambda b: (b[0], not b[1]))
            if low > high or (low == high and (low_strict or high_strict)):
                raise ConfigError(f"bounds contradict each other: no value has {self.rule()}. Fix: keep one "
                                  "side, or make the lower bound smaller than the upper one.", field="")

    def bounds(self) -> dict[str, float]:
        return {k: v for k in BOUNDS if (v := getattr(self, k)) is not None}

    def rule(self) -> str:
        """Human-readable criterion, e.g. ``oos/max_drawdown < 0.15``."""
        return " and ".join(f"{self.metric} {BOUNDS[k]} {v:g}" for k, v in self.bounds().items())

    def holds(self, value: float) -> bool:
        return all(_OPS[k](value, bound) for k, bound in self.bounds().items())


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    value: float | None
    status: str
    reason: str = ""  # why a gate was left out


def gates_from_config(node: Mapping[str, Any] | None, where: str = "validation.gates",
                      known: Collection[str] | None = None) -> list[Gate]:
    """The gates of ``node``, read at config path ``where``; a gate set to null is switched off.

    Refuses malformed entries, contradictory bounds and, given the ``known``
    run metrics, a metric outside them unless the gate says it is ``external``.
    """
    gates = []
    with located(where):
        for name, spec in (node or {}).items():
            if spec is not None:
                gate = parse(Gate, spec, str(name), name=str(name))
                if known is not None and not gate.external and gate.metric not in known:
                    raise ConfigError(
                        f"{name}.metric: no part of this job logs a run metric {gate.metric!r}. Known: "
                        f"{', '.join(sorted(known))}. A metric your own code logs to the run: declare it with "
                        f"{where}.{name}.external=true.", field=f"{name}.metric")
                gates.append(replace(gate, **{k: float(v) for k, v in gate.bounds().items()}))
    return gates


def evaluate_gates(gates: list[Gate], metrics: Mapping[str, float],
                   never_logged: Mapping[str, str] | None = None) -> list[GateResult]:
    """Each gate's status on ``metrics``: PASS, FAIL, or not evaluated when the metric is absent or not finite.

    ``never_logged`` maps the metrics this job can never produce to the reason;
    a gate on one of them (unless ``external``) is left out with that reason.
    """
    results = []
    for gate in gates:
        value = metrics.get(gate.metric)
        if not gate.external and gate.metric in (never_logged or {}):
            results.append(GateResult(gate, None, LEFT_OUT, never_logged[gate.metric]))
        elif value is None or not math.isfinite(value):
            results.append(GateResult(gate, None, NOT_EVALUATED))
        else:
            results.append(GateResult(gate, float(value), PASS if gate.holds(float(value)) else FAIL))
    return results


def unmet(results: list[GateResult]) -> list[GateResult]:
    """The gates that failed or could not be evaluated: what ``validation.strict=true`` refuses."""
    return [r for r in results if r.status in (FAIL, NOT_EVALUATED)]


def gate_rows(results: list[GateResult]) -> list[dict[str, Any]]:
    """Rows of the gates table: gate, criterion, value (whole numbers as int), status."""
    return [{"gate": r.gate.name, "criterion": r.gate.rule(),
             "value": int(r.value) if r.value is not None and r.value.is_integer() else r.value, "status": r.status}
            for r in results]


def left_out_notes(results: list[GateResult]) -> list[str]:
    """One line per gate left out: its name, metric and why this job never produces the metric."""
    return [f"{r.gate.name} left out: {r.gate.metric} {r.reason}" for r in results if r.status == LEFT_OUT]


def gate_metrics(results: list[GateResult]) -> dict[str, float]:
    """``gate/<name>`` = 1 (pass) or 0 (fail) for evaluated gates, and the four counts."""
    out = {f"gate/{r.gate.name}": float(r.status == PASS) for r in results if r.status in (PASS, FAIL)}
    for key, status in (("passed", PASS), ("failed", FAIL), ("not_evaluated", NOT_EVALUATED),
                        ("left_out", LEFT_OUT)):
        out[f"gates/{key}"] = float(sum(r.status == status for r in results))
    return out


def gate_tags(results: list[GateResult]) -> dict[str, str]:
    """``gate.<name>`` = status, so a sweep's table shows not-evaluated gates too."""
    return {f"gate.{r.gate.name}": r.status for r in results}
