"""Compose pattern and regime features into one lazy polars query.

``feature_names`` needs no data (the parameter counter sizes the input layer
from it); ``compute_features`` evaluates the same expressions, each with
``.over("symbol")``, on bars sorted by (symbol, ts). Warm-up rows are null;
``build_samples`` drops them.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from dualhrq.data.schema import validate_bars
from dualhrq.errors import ConfigError, DataError
from dualhrq.features import pattern, regime

_VIX_ANCHOR = 20.0  # long-run VIX level: vix_log is 0 there and where VIX is missing


@dataclass(frozen=True)
class FeatureSpec:
    """Window lengths in bars and whether to add VIX (``data.features`` in config)."""

    short: int = 5
    medium: int = 20
    long: int = 60
    use_vix: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.short < self.medium < self.long:
            raise ConfigError(
                f"data.features: windows must satisfy 2 <= short < medium < long, got "
                f"short={self.short}, medium={self.medium}, long={self.long}. Fix: reorder them."
            )


def feature_names(spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """(model input columns, regime columns); the regime columns are a subset."""
    model_only, regime_cols = _bar_features(spec)
    regime_names = [*regime_cols, *(["vix_log", "vix_available"] if spec.use_vix else [])]
    return [*model_only, *regime_names], regime_names


def compute_features(
    bars: pl.DataFrame, spec: FeatureSpec, vix: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``ts, symbol, close`` and every feature column, rows ordered by (symbol, ts).

    VIX is joined on the exact bar time (a daily bar and the VIX close of the
    same day), so nothing later than the bar is used; rows outside VIX
    coverage keep ``vix_log = 0`` and ``vix_available = 0``.
    """
    bars = validate_bars(bars, source="compute_features(bars)")
    model_only, regime_cols = _bar_features(spec)
    exprs = {**model_only, **regime_cols}
    query = bars.lazy().with_columns(e.over("symbol").alias(n) for n, e in exprs.items())
    if spec.use_vix:
        if vix is None:
            raise ConfigError(
                "data.features.use_vix is true but no VIX series was given. "
                "Fix: pass vix=load_vix() or set data.features.use_vix=false."
            )
        query = query.join(_checked_vix(vix).lazy(), on="ts", how="left", maintain_order="left")
        query = query.with_columns(
            vix_log=(pl.col("vix") / _VIX_ANCHOR).log().fill_null(0.0),
            vix_available=pl.col("vix").is_not_null().cast(pl.Float64),
        )
    names, _ = feature_names(spec)
    return query.select("ts", "symbol", "close", *names).collect()


def _bar_features(spec: FeatureSpec) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr]]:
    """(model-only features, regime features) as named per-symbol expressions.

    Amihud illiquidity enters as log(ILLIQ_medium / ILLIQ_long): its level
    mostly measures the asset's size (an identifier), its change a liquidity
    squeeze. Volatilities are per bar, from the medium window.
    """
    s, m, lg = spec.short, spec.medium, spec.long
    o, h, low, c = (pl.col(x) for x in ("open", "high", "low", "close"))
    volume = regime.traded_volume(pl.col("volume"))
    r = regime.log_return(c)
    rv = regime.realized_variance(r, m)
    bpv = regime.bipower_variation(r, m)
    model_only = {
        "log_return": r,
        f"mom_{s}": pattern.momentum(c, s),
        f"mom_{m}": pattern.momentum(c, m),
        f"mom_{lg}": pattern.momentum(c, lg),
        f"meanrev_z_{m}": pattern.zscore(c, m),
        f"volume_z_{m}": pattern.zscore(volume.log(), m),
        "close_location": pattern.close_location(h, low, c),
        f"atr_{m}": pattern.average_true_range(h, low, c, m),
        "gap": pattern.gap(o, c),
        "body": pattern.body(o, c),
        f"drawdown_{lg}": pattern.drawdown(c, lg),
        f"vol_ratio_{s}_{lg}": pattern.volatility_ratio(r, s, lg),
    }
    regime_cols = {
        f"rvol_{m}": (rv / m).sqrt(),
        f"bpvol_{m}": (bpv / m).sqrt(),
        f"jump_share_{m}": regime.jump_share(rv, bpv),
        f"parkinson_{m}": regime.rolling_volatility(regime.parkinson(h, low), m),
        f"garman_klass_{m}": regime.rolling_volatility(regime.garman_klass(o, h, low, c), m),
        f"rogers_satchell_{m}": regime.rolling_volatility(regime.rogers_satchell(o, h, low, c), m),
        f"amihud_{m}_{lg}": (
            regime.amihud_illiquidity(r, c, volume, m) / regime.amihud_illiquidity(r, c, volume, lg)
        ).log(),
    }
    return model_only, regime_cols


def _checked_vix(vix: pl.DataFrame) -> pl.DataFrame:
    """VIX rows usable for the join; null or NaN values count as missing days."""
    missing = [c for c in ("ts", "vix") if c not in vix.columns]
    if missing:
        raise DataError(f"vix: missing columns {missing}. Fix: pass the frame from load_vix().")
    vix = vix.select(pl.col("ts").cast(pl.Datetime("us")), pl.col("vix").cast(pl.Float64))
    vix = vix.filter(pl.col("vix").is_not_nan())
    if (vix["vix"] <= 0).any():
        raise DataError("vix: non-positive 'vix' values. Fix: drop them or reload with load_vix().")
    if vix["ts"].is_duplicated().any():
        raise DataError("vix: duplicate 'ts' rows. Fix: keep one VIX value per day.")
    return vix
