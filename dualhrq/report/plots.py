"""The report's figures, drawn with matplotlib's object API (no pyplot state, any backend).

Each function takes plain frames of the run's evidence and returns a
``Figure``; :func:`save_png` writes it. Return frames are the long
``[ts, path, strategy, net]`` frames of :mod:`dualhrq.validation.evidence`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dualhrq.validation.evidence import MODEL, path_average

_SIZE = (9.0, 3.6)
_DPI = 110


def save_png(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=_DPI, bbox_inches="tight")
    return path


def _curves(returns: pl.DataFrame) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """(strategy, path) -> (dates, compounded equity)."""
    out = {}
    for (strategy, path), part in returns.sort("ts").group_by("strategy", "path", maintain_order=True):
        out[(str(strategy), int(path))] = (part["ts"].to_numpy(), np.cumprod(1.0 + part["net"].to_numpy()))
    return out


def _baseline_style(name: str, primary: str) -> dict:
    return {"color": "black", "lw": 1.0} if name == primary else {"lw": 0.9, "ls": "--"}


def _path_figure(returns: pl.DataFrame) -> tuple[Figure, Axes, dict, list]:
    """A figure, its axes, the equity curves of every (strategy, path) and the model's paths."""
    fig = Figure(figsize=_SIZE)
    curves = _curves(returns)
    return fig, fig.subplots(), curves, sorted({p for s, p in curves if s == MODEL})


def equity_figure(returns: pl.DataFrame, primary: str) -> Figure:
    """Growth of 1 on every CPCV path, the model in colour, each baseline once (same on every path)."""
    fig, ax, curves, paths = _path_figure(returns)
    for p in paths:
        ts, eq = curves[(MODEL, p)]
        ax.plot(ts, eq, lw=0.9, alpha=0.8, label=f"model, path {p}" if len(paths) <= 6 else None)
    for name in sorted({s for s, _ in curves if s != MODEL}):
        ts, eq = curves[(name, paths[0])]
        ax.plot(ts, eq, label=name, **_baseline_style(name, primary))
    ax.set_ylabel("growth of 1")
    ax.set_title(f"Equity of {len(paths)} CPCV path(s), net of costs")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return fig


def drawdown_figure(returns: pl.DataFrame, primary: str) -> Figure:
    """Drawdown from the running peak on every path, and the primary baseline's."""
    fig, ax, curves, paths = _path_figure(returns)
    for p in paths:
        ts, eq = curves[(MODEL, p)]
        ax.plot(ts, eq / np.maximum.accumulate(eq) - 1.0, lw=0.8, alpha=0.8)
    ts, eq = curves[(primary, paths[0])]
    ax.fill_between(ts, eq / np.maximum.accumulate(eq) - 1.0, 0, color="grey", alpha=0.3, label=primary)
    ax.set_ylabel("drawdown")
    ax.set_title("Drawdown per CPCV path (lines) and of the primary baseline (shaded)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def sharpe_histogram(path_sharpes: np.ndarray, metrics: dict[str, float]) -> Figure:
    """Histogram of the paths' annualised Sharpe ratios, with the PSR and DSR benchmarks and results marked."""
    fig = Figure(figsize=_SIZE)
    ax = fig.subplots()
    finite = path_sharpes[np.isfinite(path_sharpes)]
    ax.hist(finite, bins=max(5, min(30, finite.size)), color="tab:blue", alpha=0.7, label="paths")
    ax.axvline(metrics["oos/sharpe"], color="tab:blue", lw=2, label=f"mean {metrics['oos/sharpe']:.2f}")
    ax.axvline(0.0, color="black", lw=1, ls=":", label=f"PSR benchmark 0: PSR {metrics['oos/psr']:.3f}")
    ax.axvline(metrics["dsr/sr_benchmark"], color="tab:red", lw=1.2, ls="--",
               label=f"DSR benchmark E[max SR] {metrics['dsr/sr_benchmark']:.2f} "
                     f"({metrics['dsr/n_trials']:.0f} trials): DSR {metrics['oos/dsr']:.3f}")
    ax.axvline(metrics["baseline/sharpe"], color="grey", lw=1.2, label=f"baseline {metrics['baseline/sharpe']:.2f}")
    ax.set_xlabel("annualised Sharpe ratio")
    ax.set_ylabel("paths")
    ax.set_title("Sharpe ratios of the CPCV paths")
    ax.legend(fontsize=7)
    return fig


def regime_timeline(prices: pl.DataFrame, regimes: pl.DataFrame | None) -> Figure:
    """Closes (rebased to 1) over the out-of-sample dates, above a strip of regime labels per symbol.

    ``regimes`` is ``[ts, symbol, regime]`` (an integer label), or None when the
    run produced no regime labels; the strip then says so.
    """
    fig = Figure(figsize=(_SIZE[0], _SIZE[1] * 1.3))
    ax, strip = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
    symbols = sorted(prices["symbol"].unique().to_list())
    for sym in symbols:
        part = prices.filter(pl.col("symbol") == sym).sort("ts")
        ax.plot(part["ts"].to_numpy(), part["close"].to_numpy() / part["close"][0], lw=0.9, label=sym)
    ax.set_ylabel("close, rebased to 1")
    ax.set_title("Prices over the out-of-sample dates and the regime timeline")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    if regimes is None or regimes.is_empty():
        strip.text(0.5, 0.5, "no regime labels in this run (its predictions have no 'regime' column)",
                   ha="center", va="center", transform=strip.transAxes, fontsize=8)
        strip.set_yticks([])
    else:
        wide = regimes.pivot(on="symbol", index="ts", values="regime").sort("ts")
        cols = [s for s in symbols if s in wide.columns]
        dates = wide["ts"].to_numpy()
        edges = np.r_[dates, dates[-1] + (dates[-1] - dates[-2] if dates.size > 1 else np.timedelta64(1, "D"))]
        labels = wide.select(cols).to_numpy().T.astype(float)
        mesh = strip.pcolormesh(edges, np.arange(len(cols) + 1), labels, cmap="tab10", shading="flat",
                                vmin=0, vmax=9)
        strip.set_yticks(np.arange(len(cols)) + 0.5, cols, fontsize=7)
        fig.colorbar(mesh, ax=strip, label="regime", fraction=0.03)
    strip.set_xlabel("date")
    return fig


def rolling_sharpe_figure(returns: pl.DataFrame, primary: str, window: int, periods_per_year: int) -> Figure:
    """Rolling annualised Sharpe ratio of the path-average model series and the primary baseline."""
    fig = Figure(figsize=_SIZE)
    ax = fig.subplots()
    average = path_average(returns).filter(pl.col("strategy").is_in([MODEL, primary]))
    rolling = average.sort("ts").with_columns(
        sharpe=(pl.col("net").rolling_mean(window) / pl.col("net").rolling_std(window)).over("strategy")
        * math.sqrt(periods_per_year))
    for name, style in ((MODEL, {"color": "tab:blue", "lw": 1.0}), (primary, {"color": "black", "lw": 0.9})):
        part = rolling.filter(pl.col("strategy") == name)
        ax.plot(part["ts"].to_numpy(), part["sharpe"].to_numpy(), label=name, **style)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("annualised Sharpe")
    ax.set_title(f"Rolling {window}-bar Sharpe ratio (path average)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig
