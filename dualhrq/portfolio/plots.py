"""Equity, drawdown and exposure plots of a replay, written as PNG files for MLflow artifacts."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402


def save_plots(returns: pl.DataFrame, steps: pl.DataFrame, capital: float, out_dir: Path,
               title: str) -> list[Path]:
    """``equity.png``, ``drawdown.png`` (from daily ``net`` returns) and ``exposure.png`` (per step)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ts = returns["ts"].to_numpy()
    equity = np.cumprod(1.0 + returns["net"].to_numpy())
    drawdown = 1.0 - equity / np.maximum.accumulate(np.r_[1.0, equity])[1:]
    paths = []
    for name, x, y, ylabel in [
        ("equity", ts, equity, "equity (start = 1)"),
        ("drawdown", ts, -drawdown, "drawdown"),
        ("exposure", steps["ts"].to_numpy(), steps["gross_exposure"].to_numpy() / capital, "gross exposure / capital"),
    ]:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        if name == "exposure":
            ax.plot(x, y, lw=0.6, label="gross")
            ax.plot(x, steps["net_exposure"].to_numpy() / capital, lw=0.6, label="net")
            ax.legend()
        elif name == "drawdown":
            ax.fill_between(x, y, 0.0, step="post", alpha=0.5)
        else:
            ax.plot(x, y, drawstyle="steps-post")
        ax.set_title(f"{title}: {name}")
        ax.set_ylabel(ylabel)
        fig.autofmt_xdate()
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
