"""The portfolio replay's risk report: allocation and risk contributions, VaR with its exceedances, the stress
table and the correlation regime, as one self-contained HTML page (figures drawn with matplotlib's object API)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from matplotlib.figure import Figure

from dualhrq.report.html import image, page, table
from dualhrq.report.plots import save_png

_SIZE = (9.0, 3.4)


def stacked_figure(frame: pl.DataFrame, title: str, ylabel: str) -> Figure:
    """Each non-``ts`` column stacked over time (weights in force, or risk contributions at each rebalance)."""
    fig = Figure(figsize=_SIZE)
    ax = fig.subplots()
    names = [c for c in frame.columns if c != "ts"]
    ax.stackplot(frame["ts"].to_numpy(), *[frame[c].to_numpy() for c in names], labels=names, step="post")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return fig


def var_figure(frame: pl.DataFrame, level: float) -> Figure:
    """Daily portfolio return against minus its point-in-time VaR forecast; the exceedances marked."""
    fig = Figure(figsize=_SIZE)
    ax = fig.subplots()
    ts, net, var = frame["ts"].to_numpy(), frame["net"].to_numpy(), frame["var"].to_numpy()
    ax.bar(ts, net, width=1.0, color="0.6", label="daily return")
    ax.plot(ts, -var, color="tab:red", lw=1.0, label=f"-VaR {level:.0%}")
    hit = frame["exceedance"].to_numpy()
    ax.scatter(ts[hit], net[hit], color="tab:red", marker="v", zorder=3, label=f"exceedances ({int(hit.sum())})")
    ax.set_title("Portfolio return and its one-day VaR forecast")
    ax.legend(loc="lower left", fontsize=8)
    fig.autofmt_xdate()
    return fig


def correlation_figure(frame: pl.DataFrame) -> Figure:
    """Mean pairwise EWMA correlation of the books, fast against slow, with the flagged shifts shaded."""
    fig = Figure(figsize=_SIZE)
    ax = fig.subplots()
    ts = frame["ts"].to_numpy()
    ax.plot(ts, frame["fast"].to_numpy(), lw=1.0, label="fast EWMA")
    ax.plot(ts, frame["slow"].to_numpy(), lw=1.0, ls="--", label="slow EWMA")
    shift = frame["shift"].to_numpy().astype(bool)
    if shift.any():
        low, high = ax.get_ylim()
        ax.fill_between(ts, low, high, where=shift, color="tab:orange", alpha=0.2, step="post", label="shift")
    ax.set_title("Correlation regime between the books")
    ax.set_ylabel("mean pairwise correlation")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return fig


def write_risk_report(out: Path, *, title: str, intro: str, summary: Sequence[Mapping[str, Any]],
                      weights: pl.DataFrame, contributions: pl.DataFrame, var: pl.DataFrame | None,
                      var_level: float, risk_rows: Sequence[Mapping[str, Any]],
                      stress_rows: Sequence[Mapping[str, Any]], correlation: pl.DataFrame | None,
                      extra: Sequence[tuple[str, str]] = ()) -> Path:
    """``risk_report.html`` in ``out`` (figures beside it in ``out/figures``)."""
    figures = out / "figures"
    sections = [("Books and portfolio", table(summary))]
    alloc = image(save_png(stacked_figure(weights, "Weights in force", "weight"), figures / "weights.png"),
                  "Weights of the books, as held each day (they drift between rebalances)")
    if contributions.height:
        alloc += image(save_png(stacked_figure(contributions, "Risk contributions at each rebalance",
                                               "share of variance"), figures / "risk_contributions.png"),
                       "Each book's share of the portfolio variance, from the trailing covariance the allocation used")
    sections.append(("Allocation and risk contributions", alloc))
    body = table(risk_rows)
    if var is not None and var.height:
        body += image(save_png(var_figure(var, var_level), figures / "var_exceedances.png"),
                      "Point-in-time VaR forecasts and the days the loss exceeded them")
    sections.append(("Value at risk", body))
    sections.append(("Stress tests", table(stress_rows)))
    if correlation is not None and correlation.height and np.isfinite(correlation["fast"].to_numpy()).any():
        sections.append(("Correlation regime", image(save_png(correlation_figure(correlation),
                                                              figures / "correlation.png"),
                                                     "EWMA correlation between the books")))
    sections.extend(extra)
    path = out / "risk_report.html"
    path.write_text(page(title, sections, intro))
    return path
