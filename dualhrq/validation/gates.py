"""Success criteria of the design as configurable gates over a run's metrics.

A gate names one run metric (``oos/max_drawdown``, ``sim/violations``, ...)
and bounds it: ``above`` / ``below`` (strict) and ``at_least`` / ``at_most``
(inclusive). It passes when every bound holds, fails when one does not, and
is *not evaluated* when the run has no finite value for the metric: a
criterion whose evidence was never produced is never counted as met.
The gates live in ``conf/validation/gates/``; ``validation.strict=true`` turns a
failed gate into a non-zero exit.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from dualhrq.config import FINITE, NON_EMPTY, check_fields, located, parse
from dualhrq.errors import ConfigError

PASS, FAIL, NOT_EVALUATED = "PASS", "FAIL", "not evaluated"
BOUNDS = {"above": ">", "below": "<", "at_least": ">=", "at_most": "<="}
_OPS = {"above": operator.gt, "below": operator.lt, "at_least": operator.ge, "at_most": operator.le}


class GatesFailed(RuntimeError):
    """Raised after a run under ``validation.strict=true`` when a gate failed."""


@dataclass(frozen=True)
class Gate:
    """``metric`` must satisfy every bound given (None = no such bound)."""

    name: str
    metric: Annotated[str, NON_EMPTY]
    above: Annotated[float, FINITE] | None = None
    below: Annotated[float, FINITE] | None = None
    at_least: Annotated[float, FINITE] | None = None
    at_most: Annotated[float, FINITE] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.bounds():
            raise ConfigError(f"needs at least one bound: {', '.join(BOUNDS)}", field="")

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


def gates_from_config(node: Mapping[str, Any] | None, where: str = "validation.gates") -> list[Gate]:
    """The gates of ``node``, read at config path ``where``; a gate set to null is switched off.
    Refuses malformed entries."""
    gates = []
    with located(where):
        for name, spec in (node or {}).items():
            if spec is not None:
                gate = parse(Gate, spec, str(name), name=str(name))
                gates.append(replace(gate, **{k: float(v) for k, v in gate.bounds().items()}))
    return gates


def evaluate_gates(gates: list[Gate], metrics: Mapping[str, float]) -> list[GateResult]:
    """Each gate's status on ``metrics``: PASS, FAIL, or not evaluated when the metric is absent or not finite."""
    results = []
    for gate in gates:
        value = metrics.get(gate.metric)
        if value is None or not math.isfinite(value):
            results.append(GateResult(gate, None, NOT_EVALUATED))
        else:
            results.append(GateResult(gate, float(value), PASS if gate.holds(float(value)) else FAIL))
    return results


def gate_rows(results: list[GateResult]) -> list[dict[str, Any]]:
    """Rows of the gates table: gate, criterion, value (whole numbers as int), status."""
    return [{"gate": r.gate.name, "criterion": r.gate.rule(),
             "value": int(r.value) if r.value is not None and r.value.is_integer() else r.value, "status": r.status}
            for r in results]


def gate_metrics(results: list[GateResult]) -> dict[str, float]:
    """``gate/<name>`` = 1 (pass) or 0 (fail) for evaluated gates, and the three counts."""
    out = {f"gate/{r.gate.name}": float(r.status == PASS) for r in results if r.status != NOT_EVALUATED}
    for key, status in (("passed", PASS), ("failed", FAIL), ("not_evaluated", NOT_EVALUATED)):
        out[f"gates/{key}"] = float(sum(r.status == status for r in results))
    return out


def gate_tags(results: list[GateResult]) -> dict[str, str]:
    """``gate.<name>`` = status, so a sweep's table shows not-evaluated gates too."""
    return {f"gate.{r.gate.name}": r.status for r in results}
