"""One run's report: the figures as PNG files and one self-contained HTML page."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from dualhrq.report import plots
from dualhrq.report.html import image, page, preformatted, table
from dualhrq.validation.evidence import Evidence
from dualhrq.validation.gates import GateResult, gate_rows, left_out_notes

HEADLINE = [
    ("oos/sharpe", "mean annualised Sharpe over the CPCV paths"),
    ("oos/sharpe_std", "spread (std) of the path Sharpe ratios"),
    ("oos/sharpe_min", "worst path's Sharpe"),
    ("oos/sharpe_ci_low", "path-average Sharpe, bootstrap CI low"),
    ("oos/sharpe_ci_high", "path-average Sharpe, bootstrap CI high"),
    ("oos/max_drawdown", "worst path's maximum drawdown"),
    ("oos/sharpe_path_average", "Sharpe of the path-average series: the one PSR and DSR test"),
    ("oos/psr", "PSR of the path-average series (benchmark 0)"),
    ("oos/dsr", "DSR of the path-average series"),
    ("dsr/n_trials", "trials behind the DSR"),
    ("oos/min_trl_days", "minimum track record length at 95%, bars"),
    ("oos/spa_pvalue", "Hansen SPA p (arch, consistent) vs the primary baseline"),
    ("oos/spa_studentized_pvalue", "Hansen SPA p, studentized statistic"),
    ("oos/rc_pvalue", "White Reality Check p vs the primary baseline"),
    ("oos/sharpe_improvement", "relative Sharpe improvement over the primary baseline"),
]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    plots: list[Path]


def write_run_report(out_dir: Path, *, title: str, intro: str, evidence: Evidence, returns: pl.DataFrame,
                     prices: pl.DataFrame, regimes: pl.DataFrame | None, gates: list[GateResult],
                     fold_rows: Sequence[Mapping[str, Any]], budget_table: str, config_yaml: str,
                     rolling_window: int, periods_per_year: int) -> ReportFiles:
    """Draw the figures into ``out_dir`` and write ``out_dir/report.html`` with everything inlined."""
    figures = {
        "equity.png": ("Equity of every CPCV path with the baselines",
                       plots.equity_figure(returns, evidence.primary)),
        "drawdown.png": ("Drawdown", plots.drawdown_figure(returns, evidence.primary)),
        "path_sharpe.png": ("Path Sharpe ratios with PSR and DSR",
                            plots.sharpe_histogram(evidence.path_sharpes, evidence.metrics)),
        "regime_timeline.png": ("Regime timeline over prices", plots.regime_timeline(prices, regimes)),
        "rolling_sharpe.png": ("Rolling Sharpe ratio", plots.rolling_sharpe_figure(
            returns, evidence.primary, rolling_window, periods_per_year)),
    }
    pngs = {name: plots.save_png(fig, out_dir / name) for name, (_, fig) in figures.items()}
    headline = [{"metric": k, "value": evidence.metrics.get(k), "meaning": meaning} for k, meaning in HEADLINE]
    sections = [
        ("Gates", table(gate_rows(gates), table_id="gates", status_column="status")
         + "".join(f"<p class='note'>{html.escape(note)}</p>" for note in left_out_notes(gates))),
        ("Headline statistics", table(headline, table_id="headline")),
        ("CPCV paths", table(evidence.path_rows, table_id="paths")
         + "<p class='note'>Row 'mean' is the path-average series (equal capital in every path); CIs are "
           "stationary-bootstrap intervals; 'spa-t' is Hansen's studentized SPA.</p>"),
        ("Baselines on the same paths", table(evidence.baseline_rows, table_id="baselines")),
        ("Folds", table(list(fold_rows), table_id="folds")),
        ("Parameters", preformatted(budget_table)),
        ("Figures", "\n".join(image(pngs[name], caption) for name, (caption, _) in figures.items())),
        ("Config", preformatted(config_yaml)),
    ]
    out = out_dir / "report.html"
    out.write_text(page(title, sections, intro=html.escape(intro)))
    return ReportFiles(html=out, plots=list(pngs.values()))
