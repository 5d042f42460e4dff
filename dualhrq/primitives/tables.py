"""Plain-text tables: the end-of-run summaries printed to the console and logged, and the cells of HTML tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def format_table(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> str:
    """Left-aligned text columns, right-aligned numbers (None shows as "-"), a header and a rule."""
    if not rows:
        return ""
    headers = list(rows[0].keys())
    cells = [[format_value(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row.get(h), (int, float, type(None))) for row in rows) for h in headers]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [title] if title else []
    out += [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(c) for c in cells]
    return "\n".join(out)


def format_value(value: Any) -> str:
    """How a table shows a value: "-" for None, thousands separators for ints, 4 decimals for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)
