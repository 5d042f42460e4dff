"""Parameter counts per component and the parameter budget of the system design."""

from __future__ import annotations

from collections.abc import Mapping

from dualhrq.errors import ConfigError
from dualhrq.models.network import DualHRQNet
from dualhrq.primitives.tables import format_table

Budget = Mapping[str, Mapping[str, float]]


class BudgetError(ConfigError):
    """A model's parameter counts violate its declared budget."""


def count_parameters(net: DualHRQNet) -> dict[str, int]:
    """Parameters per component plus "total"; fails if components overlap or miss any."""
    seen: dict[int, str] = {}
    counts: dict[str, int] = {}
    for name, module in net.components().items():
        counts[name] = 0
        for p in module.parameters():
            if id(p) in seen:
                raise RuntimeError(f"parameter shared by components {seen[id(p)]!r} and {name!r}")
            seen[id(p)] = name
            counts[name] += p.numel()
    missed = [n for n, p in net.named_parameters() if id(p) not in seen]
    if missed:
        raise RuntimeError(f"parameters outside every component: {missed}")
    counts["total"] = sum(counts.values())
    return counts


def _bounds(counts: Mapping[str, int], budget: Budget) -> dict[str, tuple[float | None, float | None]]:
    """Validated (min, max) per budgeted component."""
    bounds = {}
    for name, limits in budget.items():
        if name not in counts:
            raise ConfigError(f"model.budget.{name}: unknown component; known: {list(counts)}.")
        extra = set(limits) - {"min", "max"}
        if extra:
            raise ConfigError(f"model.budget.{name} takes only 'min' and 'max', got {sorted(extra)}.")
        bounds[name] = (limits.get("min"), limits.get("max"))
    return bounds


def check_budget(counts: Mapping[str, int], budget: Budget) -> list[str]:
    """Human-readable violations of ``budget`` (``{component: {"min"?, "max"?}}``); empty if none."""
    violations = []
    for name, (lo, hi) in _bounds(counts, budget).items():
        n = counts[name]
        if hi is not None and n > hi:
            violations.append(f"{name}: {n:,} parameters > max {hi:,.0f}")
        if lo is not None and n < lo:
            violations.append(f"{name}: {n:,} parameters < min {lo:,.0f}")
    return violations


def format_budget_table(counts: Mapping[str, int], budget: Budget) -> str:
    """Plain-text table: component, params, min, max, status (OK / OVER / UNDER)."""
    bounds = _bounds(counts, budget)
    rows = []
    for name, n in counts.items():
        lo, hi = bounds.get(name, (None, None))
        status = "OVER" if hi is not None and n > hi else "UNDER" if lo is not None and n < lo else "OK"
        rows.append({"component": name, "params": n, "min": _int_or_none(lo), "max": _int_or_none(hi),
                     "status": status})
    return format_table(rows)


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else round(value)
