"""Self-contained HTML: tables and PNG figures inlined as data URIs, so one file is the whole report."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dualhrq.primitives.tables import format_value
from dualhrq.validation.gates import FAIL, PASS

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f3f3f3; } .PASS { background: #d9f2d9; } .FAIL { background: #f7d4d4; }
.not-evaluated { background: #eee; color: #666; } figure { margin: 1em 0; } img { max-width: 100%; }
pre { background: #f7f7f7; padding: 1em; font-size: 0.8em; overflow-x: auto; } .note { color: #555; }
"""


def table(rows: Sequence[Mapping[str, Any]], table_id: str | None = None, status_column: str | None = None) -> str:
    """An HTML table of ``rows``; numbers right-aligned, ``status_column`` cells classed by their value."""
    if not rows:
        return "<p class='note'>(none)</p>"
    headers = list(rows[0])
    out = [f"<table{f' id={table_id!r}' if table_id else ''}>",
           "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = []
        for h in headers:
            value = row.get(h)
            css = "num" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
            if h == status_column:
                css = {PASS: PASS, FAIL: FAIL}.get(str(value), "not-evaluated")
            cells.append(f"<td class='{css}'>{html.escape(format_value(value))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    return "\n".join([*out, "</table>"])


def image(path: Path, caption: str) -> str:
    """A figure with the PNG inlined as a base64 data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure><img alt={html.escape(caption)!r} src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def page(title: str, sections: Sequence[tuple[str, str]], intro: str = "") -> str:
    """The whole document: a title, an intro paragraph and ``(heading, html body)`` sections."""
    body = "\n".join(f"<section><h2>{html.escape(h)}</h2>\n{content}</section>" for h, content in sections)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
            f"<p class='note'>{intro}</p>\n{body}\n</body></html>\n")


def preformatted(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"
