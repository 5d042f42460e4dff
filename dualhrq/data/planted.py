"""The positive control: a SYNTHETIC daily market with a planted, known predictable part.

A pipeline that finds no edge in real data may be right, or may be unable to
find one. This market answers the second question: its returns carry a
signal of known size, and the Sharpe ratio a perfect model could reach is
known in closed form, so a run on it shows how much of a real edge the
pipeline recovers.

The model. Symbols are independent copies of one process; on each trading
day ``t`` symbol ``i`` has the close-to-close simple return

    R[i, t+1] = a * sign(R[i, t]) + sigma * eps[i, t+1],    eps iid N(0, 1),

so after an up day the next day's expected return is ``+a``, after a down
day ``-a`` (``a = edge``, ``sigma = volatility``). Opens, highs, lows and
volumes are drawn independently of the future and carry no information.

The bound. Let F_t be everything observed up to day t's close (every bar of
every symbol). Given F_t, the N returns of day t+1 have mean vector m_t with
m_i = a * sign(R[i, t]), so |m_t|^2 = N a^2 whatever happened, and
covariance sigma^2 I. A strategy holds F_t-measurable positions w_t and earns
x = w_t . R_{t+1} (the backtest's equal-weight mean is x / N, the same
Sharpe). Its Sharpe ratio is SR = sqrt(q / (1 - q)) with q = E[x]^2 / E[x^2],
increasing in q. With A_t = m_t m_t' + sigma^2 I, E[x] = E[w'm] and
E[x^2] = E[w'Aw], and Cauchy-Schwarz on A^(1/2) w and A^(-1/2) m gives

    q <= E[m' A^-1 m] = E[(|m|^2 / sigma^2) / (1 + |m|^2 / sigma^2)]
                      = (N a^2 / sigma^2) / (1 + N a^2 / sigma^2)

(Sherman-Morrison for A^-1), hence, per day,

    SR <= sqrt(N) * a / sigma,

with equality for w proportional to A^-1 m, that is w_i = sign(R[i, t]): a
position in [-1, 1] that the model's signal can take. Annualised it is
``sqrt(N * periods_per_year) * a / sigma``, before trading costs (each sign
change costs twice ``cost_bps``; it happens on a share Phi(-a / sigma) of
days). The bound is the population Sharpe; a finite sample's oracle Sharpe
scatters around it with a standard error of about sqrt((1 + SR^2 / 2) / T)
per day over T days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Annotated

import numpy as np
import polars as pl

from dualhrq.config import PositiveInt, between, check_fields
from dualhrq.data.schema import validate_bars
from dualhrq.errors import ConfigError


@dataclass(frozen=True)
class PlantedMarket:
    """``data=synthetic_planted``'s source: SYNTHETIC daily bars of ``n_symbols`` independent symbols with
    the planted sign persistence above, on ``n_days`` weekdays from ``start``; seeded by ``seed``."""

    n_symbols: PositiveInt = 2
    n_days: Annotated[int, between(3, 100_000)] = 1500
    edge: Annotated[float, between(0.0, 0.05)] = 0.005
    volatility: Annotated[float, between(0.0, 0.05, lo_open=True)] = 0.01
    start: str = "2000-01-03"
    seed: int = 0

    def __post_init__(self) -> None:
        check_fields(self)
        try:
            date.fromisoformat(self.start)
        except ValueError:
            raise ConfigError(f"start={self.start!r} is not an ISO date. Fix: write it as YYYY-MM-DD.",
                              field="start") from None

    def sharpe_bound(self, periods_per_year: int) -> float:
        """The annualised Sharpe ratio of a perfect model, before costs (derived in the module docstring)."""
        return math.sqrt(self.n_symbols * periods_per_year) * self.edge / self.volatility

    def __call__(self) -> pl.DataFrame:
        ts = _weekdays(self.start, self.n_days)
        frames = [self._symbol(i, ts) for i in range(self.n_symbols)]
        return validate_bars(pl.concat(frames), source="synthetic_planted")

    def _symbol(self, i: int, ts: pl.Series) -> pl.DataFrame:
        rng = np.random.default_rng([self.seed, i])
        eps = rng.standard_normal(self.n_days)
        r = np.empty(self.n_days)
        r[0] = self.volatility * eps[0]
        for t in range(1, self.n_days):
            r[t] = self.edge * np.sign(r[t - 1]) + self.volatility * eps[t]
        close = 100.0 * np.cumprod(1.0 + r)
        prev = np.r_[100.0, close[:-1]]
        open_ = prev * np.exp(0.25 * self.volatility * rng.standard_normal(self.n_days))
        wick = 0.5 * self.volatility * np.abs(rng.standard_normal((2, self.n_days)))
        return pl.DataFrame({
            "ts": ts, "symbol": f"PLANTED{i}", "open": open_,
            "high": np.maximum(open_, close) * np.exp(wick[0]), "low": np.minimum(open_, close) * np.exp(-wick[1]),
            "close": close, "volume": 1e6 * np.exp(0.3 * rng.standard_normal(self.n_days)),
        })


def _weekdays(start: str, n: int) -> pl.Series:
    """The first ``n`` weekdays from ``start`` as midnight ``Datetime("us")`` bar times."""
    first = np.datetime64(start, "D")
    days = np.busday_offset(first, np.arange(n), roll="forward")
    return pl.Series("ts", days.astype("datetime64[us]"))
