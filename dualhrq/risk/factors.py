"""Factor decomposition of a return series: how much of a book's variance the market, style and volatility
factors explain, and which factor carries it.

A linear factor model ``r_t = alpha + sum_i beta_i f_it + e_t`` fitted by
least squares splits the return variance into the factor part
``var(sum_i beta_i f_i)`` and the idiosyncratic part ``var(e)``; the factor
part is shared out by the Euler decomposition ``beta_i cov(f_i, sum_j beta_j
f_j)`` (Grinold & Kahn, "Active Portfolio Management", ch. 3), whose terms
sum to it and may be negative for a factor that hedges another.

The factor sets here are the ones the bundled data afford: daily market,
NASDAQ-over-S&P, VIX and factor-ETF returns (:func:`daily_factors`), the
Fama-French monthly factors (:func:`monthly_french`), and statistical factors
of a panel by principal components (:func:`pca_factors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

import numpy as np
import polars as pl
from sklearn.decomposition import PCA

from dualhrq.config import PositiveInt, at_least, check_fields, check_value, invalid, one_of
from dualhrq.data.sources import FACTOR_ETFS, load_bundled, load_factor_etfs, load_sp500_index, load_vix
from dualhrq.errors import ConfigError, DataError

__all__ = ["FRENCH_FACTORS", "FactorModel", "PCAFactors", "daily_factors", "monthly_french", "pca_factors"]

FRENCH_FACTORS = ("Mkt-RF", "SMB", "HML")  # what arch.data.frenchdata holds besides RF


@dataclass(eq=False)
class FactorModel:
    """Least-squares factor model of one return series, scikit-learn style: ``FactorModel().fit(r, f)``.

    ``fit`` takes numpy arrays (``returns`` of shape ``(T,)``, ``factors`` of
    shape ``(T, K)``, factors named ``f1..fK``) or polars frames (``returns``
    with ``ts`` and one value column, ``factors`` with ``ts`` and one column
    per factor, nulls where a factor has no data). Frames are aligned on
    ``ts`` and only the days where the return and every factor exist are used;
    fewer than ``min_obs`` such days is refused, naming the factor that
    limits them and its span.

    Fitted: ``factor_names_``, ``betas_`` (K,), ``alpha_`` (per period),
    ``r2_``, ``factor_variance_`` and ``idiosyncratic_variance_`` (per-period
    sample variances of the fitted part and of the residual),
    ``factor_share_`` (their split of the total; equal to ``r2_`` for
    least squares with an intercept), ``contributions_`` (K,) (each factor's
    Euler share of the total variance, summing to ``factor_share_``),
    ``n_obs_``.
    """

    min_obs: Annotated[int, at_least(2)] = 60

    def __post_init__(self) -> None:
        check_fields(self)

    def fit(self, returns: np.ndarray | pl.DataFrame, factors: np.ndarray | pl.DataFrame) -> FactorModel:
        y, x, names = _aligned(returns, factors, self.min_obs)
        design = np.column_stack([np.ones(len(y)), x])
        rank = np.linalg.matrix_rank(design)
        if rank < design.shape[1]:
            flat = [n for n, col in zip(names, x.T, strict=True) if np.ptp(col) == 0]
            raise DataError(f"factors {flat or list(names)} are {'constant' if flat else 'collinear'} over the "
                            f"{len(y)} days used (design rank {rank} of {design.shape[1]}). Fix: drop "
                            f"{'them' if flat else 'a factor that is a combination of the others'}.")
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        fitted = x @ coef[1:]
        total = float(np.var(y, ddof=1))
        if total == 0:
            raise DataError("returns are constant over the days used; there is no variance to decompose.")
        self.factor_names_ = names
        self.alpha_, self.betas_ = float(coef[0]), coef[1:]
        self.factor_variance_ = float(np.var(fitted, ddof=1))
        self.idiosyncratic_variance_ = float(np.var(y - coef[0] - fitted, ddof=1))
        self.factor_share_ = self.factor_variance_ / (self.factor_variance_ + self.idiosyncratic_variance_)
        self.r2_ = 1.0 - float(np.sum((y - coef[0] - fitted) ** 2) / np.sum((y - y.mean()) ** 2))
        centred = x - x.mean(axis=0)
        self.contributions_ = self.betas_ * (centred.T @ (fitted - fitted.mean())) / (len(y) - 1) / total
        self.n_obs_ = len(y)
        return self

    def summary(self) -> pl.DataFrame:
        """One row per factor: ``factor, beta, contribution`` (share of the total variance)."""
        if not hasattr(self, "betas_"):
            raise ConfigError("FactorModel is not fitted. Fix: call fit(returns, factors) first.")
        return pl.DataFrame({"factor": list(self.factor_names_), "beta": self.betas_,
                             "contribution": self.contributions_})


def _aligned(returns: np.ndarray | pl.DataFrame, factors: np.ndarray | pl.DataFrame,
             min_obs: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(y, X, factor names)`` on the rows where the return and every factor are known."""
    if isinstance(returns, pl.DataFrame) != isinstance(factors, pl.DataFrame):
        raise ConfigError("returns and factors must both be polars frames (aligned on ts) or both numpy arrays.",
                          field="factors")
    if isinstance(returns, pl.DataFrame):
        y, x, names = _aligned_frames(returns, factors, min_obs)
    else:
        y, x = np.asarray(returns, dtype=float), np.asarray(factors, dtype=float)
        if x.ndim == 1:
            x = x[:, None]
        if y.ndim != 1 or x.ndim != 2 or len(x) != len(y):
            raise DataError(f"returns must be 1-D (T,) and factors (T, K) with the same T, got shapes {y.shape} "
                            f"and {x.shape}.")
        names = tuple(f"f{i + 1}" for i in range(x.shape[1]))
        if len(y) < min_obs:
            raise DataError(f"returns: {len(y)} observations, fewer than min_obs={min_obs}. Fix: pass a longer "
                            "series or lower min_obs.")
    if not (np.isfinite(y).all() and np.isfinite(x).all()):
        raise DataError("returns and factors must be finite; found NaN or inf. Fix: drop or fill those days.")
    if len(y) <= x.shape[1] + 1:
        raise DataError(f"{len(y)} observations cannot fit an intercept and {x.shape[1]} factors.")
    return y, x, names


def _aligned_frames(returns: pl.DataFrame, factors: pl.DataFrame,
                    min_obs: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    value = [c for c in returns.columns if c != "ts"]
    if "ts" not in returns.columns or len(value) != 1:
        raise DataError(f"returns must have a ts column and one value column, got {returns.columns}.")
    names = tuple(c for c in factors.columns if c != "ts")
    if "ts" not in factors.columns or not names:
        raise DataError(f"factors must have a ts column and at least one factor column, got {factors.columns}.")
    for frame, what in ((returns, "returns"), (factors, "factors")):
        if frame["ts"].n_unique() != frame.height:
            raise DataError(f"{what}: ts holds duplicate days. Fix: one row per day.")
    series = returns.rename({value[0]: "__y"}).drop_nulls("__y").with_columns(pl.col("ts").cast(factors["ts"].dtype))
    joined = series.join(factors, on="ts", how="left").sort("ts")
    # NaN (not only null) marks a missing value as well
    joined = joined.with_columns(pl.col("__y", *names).cast(pl.Float64).fill_nan(None))
    usable = joined.drop_nulls()
    if usable.height < min_obs:
        counts = {n: joined[n].count() for n in names}
        # every factor too short on its own, else the one that cuts the common days most
        limiting = [n for n in names if counts[n] < min_obs] or [min(counts, key=counts.get)]
        spans = []
        for name in limiting:
            known = factors.filter(pl.col(name).is_not_null() & pl.col(name).is_not_nan())["ts"]
            span = f"{_day(known.min())}..{_day(known.max())}" if known.len() else "no days"
            spans.append(f"factor '{name}' covers {span}")
        raise DataError(
            f"only {usable.height} days where the returns and all factors exist, fewer than min_obs={min_obs}: "
            f"{', '.join(spans)}; the returns cover {_day(series['ts'].min())}..{_day(series['ts'].max())}. "
            f"Fix: drop {', '.join(repr(n) for n in limiting)} or choose returns inside the span.")
    return usable["__y"].to_numpy(), usable.select(names).to_numpy(), names


def _day(ts: datetime | date | None) -> str:
    return "none" if ts is None else str(ts.date() if isinstance(ts, datetime) else ts)


# ---------------------------------------------------------------- daily factors of the bundled data


def daily_factors(start: str | date | None = None, end: str | date | None = None) -> pl.DataFrame:
    """Daily factor returns from the bundled real data, ``ts`` plus one column per factor.

    Each column is null where its source does not cover the day; its first
    value is the return from the source's first close to its second:

    * ``market``: S&P 500 close-to-close return (skfolio's index), 1990-01-03..2022-12-28;
    * ``nasdaq_minus_sp500``: NASDAQ composite return minus S&P 500 return, a growth/technology tilt
      (arch.data), 1999-01-05..2018-12-31;
    * ``vix_change``: day-on-day change of the VIX close in index points (arch.data), 2014-01-06..2019-01-03;
    * ``mtum``, ``qual``, ``size``, ``usmv``, ``vlue``: iShares MSCI USA momentum, quality, size, minimum
      volatility and value ETF returns (skfolio), 2014-01-03..2022-12-28. They are long-only funds with
      market betas near one, so next to ``market`` their betas measure the style tilt net of the market.

    ``start``/``end`` (inclusive ISO dates) cut the frame after the returns are taken, so the first day
    inside keeps its return.
    """
    lo, hi = _iso(start, "start"), _iso(end, "end")
    if lo and hi and lo > hi:
        raise invalid("start", str(lo), f"on or before end ({hi})", "swap start and end.")
    market = load_sp500_index().select("ts", market=pl.col("close").pct_change())
    bundled = load_bundled().pivot(on="symbol", index="ts", values="close").sort("ts")
    nasdaq = bundled.select("ts", nasdaq_minus_sp500=pl.col("NASDAQ").pct_change() - pl.col("SP500").pct_change())
    vix = load_vix().sort("ts").select("ts", vix_change=pl.col("vix").diff())
    etfs = (load_factor_etfs(market=False).with_columns(r=pl.col("close").pct_change().over("symbol"))
            .pivot(on="symbol", index="ts", values="r").sort("ts")
            .select("ts", *(pl.col(s).alias(s.lower()) for s in FACTOR_ETFS)))
    frame = market
    for part in (nasdaq, vix, etfs):
        frame = frame.join(part, on="ts", how="full", coalesce=True)
    frame = frame.sort("ts").slice(1)  # the first row is every source's first close: no return yet
    if lo:
        frame = frame.filter(pl.col("ts") >= lo)
    if hi:
        frame = frame.filter(pl.col("ts") < hi + timedelta(days=1))
    if frame.height == 0:
        raise DataError(f"start={start} / end={end} select no days; the factors cover 1990-01-03..2022-12-28. "
                        "Fix: choose a range that overlaps them.")
    return frame


def _iso(value: str | date | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        day = value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError:
        raise invalid(field, value, "an ISO date", "write it as YYYY-MM-DD.") from None
    return datetime(day.year, day.month, day.day)


# ---------------------------------------------------------------- Fama-French monthly factors


def monthly_french(returns: pl.DataFrame, factors: Sequence[str] = FRENCH_FACTORS, min_obs: int = 36) -> FactorModel:
    """Daily simple returns (``ts`` plus one value column) compounded to calendar months, in excess of the
    one-month T-bill rate, decomposed on the Fama-French (1993) monthly factors.

    The factors are Ken French's ``Mkt-RF``, ``SMB`` and ``HML`` with ``RF``
    as shipped by ``arch.data.frenchdata`` (1926-07..2018-11, percent per
    month, converted to fractions). A month at either end of the series
    counts as whatever part of it the returns cover: pass whole months.
    """
    for name in factors:
        check_value("factors", name, Annotated[str, one_of(FRENCH_FACTORS)])
    if not factors:
        raise invalid("factors", list(factors), f"one or more of {list(FRENCH_FACTORS)}")
    value = [c for c in returns.columns if c != "ts"]
    if "ts" not in returns.columns or len(value) != 1:
        raise DataError(f"returns must have a ts column and one value column, got {returns.columns}.")
    monthly = (returns.drop_nulls(value[0]).sort("ts")
               .group_by(month=pl.col("ts").dt.truncate("1mo").cast(pl.Date), maintain_order=True)
               .agg(r=(1 + pl.col(value[0])).product() - 1))
    french = _french()
    excess = monthly.join(french.select("month", "RF"), on="month", how="left").select(
        ts="month", excess=pl.col("r") - pl.col("RF"))
    return FactorModel(min_obs=min_obs).fit(excess, french.select(ts="month", *factors))


def _french() -> pl.DataFrame:
    """The Fama-French monthly factors and RF as fractions, one row per month (``month``: its first day)."""
    from arch.data import frenchdata

    raw = frenchdata.load()
    # the file's index is YYYYMM; pandas reads it as nanoseconds since 1970, so the integer is the month
    yyyymm = np.asarray(raw.index.astype("int64"))
    months = [date(int(m) // 100, int(m) % 100, 1) for m in yyyymm]
    return pl.DataFrame({"month": months, **{c: raw[c].to_numpy() / 100.0 for c in (*FRENCH_FACTORS, "RF")}})


# ---------------------------------------------------------------- statistical factors


@dataclass(frozen=True)
class PCAFactors:
    """Principal-component factors of a return panel.

    ``returns`` (T, n): factor returns, the demeaned panel projected on the
    components; ``loadings`` (n, N): unit-length components (rows), so the
    panel is approximately ``mean + returns @ loadings``;
    ``explained_variance_ratio`` (n,): each component's share of the total
    variance.
    """

    returns: np.ndarray
    loadings: np.ndarray
    explained_variance_ratio: np.ndarray


def pca_factors(returns: np.ndarray, n_components: int) -> PCAFactors:
    """Statistical factors of a (T, N) panel of returns by scikit-learn's PCA (for intraday or multi-asset
    books, where no named factor set fits). Components are the eigenvectors of the sample covariance, largest
    first; their sign is arbitrary."""
    x = np.asarray(returns, dtype=float)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise DataError(f"returns must be a finite (T, N) panel, got shape {x.shape}"
                        f"{' with NaN/inf' if x.size and not np.isfinite(x).all() else ''}.")
    check_value("n_components", n_components, PositiveInt)
    limit = min(x.shape)
    if n_components > limit:
        raise invalid("n_components", n_components, f"at most min(T, N) = {limit}")
    pca = PCA(n_components=n_components).fit(x)
    return PCAFactors(returns=pca.transform(x), loadings=pca.components_,
                      explained_variance_ratio=pca.explained_variance_ratio_)

