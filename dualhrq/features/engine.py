"""Compose pattern and regime features into one lazy polars query.

``feature_names`` needs no data (the parameter counter sizes the input layer
from it); ``compute_features`` evaluates the same expressions, each with
``.over("symbol")``, on bars sorted by (symbol, ts). Warm-up rows are null;
``build_samples`` drops them. Three feature sets exist: ``FeatureSpec`` for
daily bars, ``CloseFeatureSpec`` for close-only daily panels and
``IntradayFeatureSpec`` for minute bars with quotes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

import polars as pl

from dualhrq.config import PositiveInt, at_least, check_fields, invalid
from dualhrq.data.schema import CLOSE_ONLY_SCHEMA, validate_bars
from dualhrq.errors import ConfigError, DataError
from dualhrq.features import market as mkt
from dualhrq.features import microstructure as micro
from dualhrq.features import pattern, regime
from dualhrq.features.cross_section import cross_sectional_rank
from dualhrq.features.options import surface_features
from dualhrq.features.rule_state import RULE_STATE_FEATURES, rule_state_features
from dualhrq.features.vol_regime import markov_volatility_regime

_VIX_ANCHOR = 20.0  # long-run VIX level: vix_log is 0 there and where VIX is missing
VIX_STALE_DAYS = 5  # calendar days a VIX close stays usable (a long weekend and a holiday)


@dataclass(frozen=True)
class _Windows:
    """What both feature sets share: window lengths in bars, and features of the user's own.

    ``extra`` adds model inputs and ``extra_regime`` regime inputs (which are model inputs too): name ->
    a polars expression over the bar columns, computed per symbol like every built-in feature
    (``data.features.extra.<name>: {_target_: <function returning the expression>, ...}``).
    ``lookback`` overrides :func:`input_lookback` (bars), e.g. for extra features reaching further
    back than ``long``; purging and embargo keep every training window's lookback clear of test data.
    ``regime_window``: each symbol's regime features (``extra_regime`` included, VIX not: it is the
    same for every symbol) become z-scores against that symbol's own last ``regime_window`` bars, so
    they say how calm or stressed the instrument is against its recent past and little about which
    instrument it is (its typical volatility and liquidity levels identify it); null keeps the levels.
    """

    short: int = 5
    medium: int = 20
    long: int = 60
    extra: Mapping[str, pl.Expr] = field(default_factory=dict)
    extra_regime: Mapping[str, pl.Expr] = field(default_factory=dict)
    lookback: PositiveInt | None = None
    regime_window: Annotated[int, at_least(2)] | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        _check_windows(self)
        _check_extra(self)


@dataclass(frozen=True)
class FeatureSpec(_Windows):
    """Daily-bar features (``data.features`` in config): the windows, and whether to add VIX; regime
    features relative to the last half year of the symbol's own history by default."""

    use_vix: bool = True
    regime_window: Annotated[int, at_least(2)] | None = 120


@dataclass(frozen=True)
class CloseFeatureSpec(_Windows):
    """Daily features of close-only panels (``data=sp500_stocks``): only what closes support.

    Per symbol: return, momentum, mean reversion, drawdown and volatility ratio as inputs; realized and
    bipower volatility and the jump share as regime inputs, z-scored per symbol over ``regime_window``.
    ``cross_section``: each day's ranks of medium and long momentum and of volatility among the symbols,
    and the day's dispersion of returns across them (a market regime input). ``market``: rolling beta and
    correlation to the market index over ``long`` bars, and the index's own volatility, momentum and
    drawdown as market regime inputs (the same for every symbol, so they are not z-scored per symbol).
    Range and volume features need open, high, low and volume: :func:`left_out_features` names them.
    """

    cross_section: bool = True
    market: bool = True
    regime_window: Annotated[int, at_least(2)] | None = 120


@dataclass(frozen=True)
class IntradayFeatureSpec(_Windows):
    """Minute-bar features (``data.features`` of ``data=synthetic_intraday``); windows in bars.

    ``quotes``: bars carry bid/ask and their sizes (spread, depth imbalance,
    CKS order-flow imbalance); without them the order flow is tick-rule
    signed volume. ``trades``: bars carry trade counts. ``cross_section``:
    add per-timestamp ranks across symbols.
    ``vol_regime``: add the Markov-switching volatility regime of
    ``regime_block``-bar blocks, fitted on each symbol's first
    ``regime_fit_days`` sessions (which are then left without features).
    ``options``: add the option-surface features of the previous session's
    end-of-day chain (``options.surface_features``). ``rule_state``: add the
    market-rule state (Rule 201 in force, distances to the LULD bands;
    ``rule_state.rule_state_features``); needs the quote contract's columns.
    """

    medium: int = 30
    long: int = 120
    tsrv_k: int = 5
    quotes: bool = True
    trades: bool = True
    cross_section: bool = True
    vol_regime: bool = False
    regime_block: Annotated[int, at_least(2)] = 30
    regime_fit_days: PositiveInt = 5
    options: bool = False
    rule_state: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 < self.tsrv_k < self.long:
            raise invalid("tsrv_k", self.tsrv_k, f"in 2..long-1 ({self.long - 1})")


Spec = FeatureSpec | CloseFeatureSpec | IntradayFeatureSpec
SESSION_BARS = 390  # one-minute bars in a regular US equity session (09:30-16:00 ET)


def input_lookback(spec: Spec) -> int:
    """Bars before a feature row that its value can depend on: what the embargo must clear.

    Daily: the ``long`` window (``mom_long`` reads the close ``long`` bars back). Intraday: the
    session VWAP reaches back to the session's open, the option surface to the previous session's
    chain, and the Rule 201 state to the close two sessions back (a trigger yesterday, measured
    from the day before's close, restricts today). Regime features standardised over the last
    ``regime_window`` bars reach that much further back. ``spec.lookback`` overrides the count.
    """
    if spec.lookback is not None:
        return spec.lookback
    relative = spec.regime_window - 1 if spec.regime_window else 0  # a z-score's oldest bar, then its lookback
    if not isinstance(spec, IntradayFeatureSpec):
        return spec.long + relative
    sessions = 3 if spec.rule_state else 2 if spec.options else 1
    return max(spec.long, sessions * SESSION_BARS) + relative



def _check_windows(spec: Spec) -> None:
    if not 2 <= spec.short < spec.medium < spec.long:
        raise ConfigError(f"windows must satisfy 2 <= short < medium < long, got short={spec.short}, "
                          f"medium={spec.medium}, long={spec.long}. Fix: reorder them.", field="")


def _check_extra(spec: Spec) -> None:
    """``extra``/``extra_regime`` map new names to polars expressions."""
    for kind in ("extra", "extra_regime"):
        mapping = dict(getattr(spec, kind))
        for name, expr in mapping.items():
            if not isinstance(expr, pl.Expr):
                raise ConfigError(f"{kind}.{name} must build a polars expression, got {type(expr).__name__}. "
                                  "Fix: point its _target_ at a function returning pl.Expr.", field=f"{kind}.{name}")
        object.__setattr__(spec, kind, mapping)
    if not spec.extra and not spec.extra_regime:
        return
    names = feature_names(spec)[0]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ConfigError(f"the extra features {clash} reuse a feature's name. Fix: rename them.", field="")

SURFACE_FEATURES = ("atm_iv", "atm_term_slope", "rr25", "bf25")


def feature_names(spec: Spec) -> tuple[list[str], list[str]]:
    """(model input columns, regime columns); the regime columns are a subset."""
    if isinstance(spec, IntradayFeatureSpec):
        model_only, regime_cols = _intraday_features(spec)
        extra = ((["vol_regime"] if spec.vol_regime else []) + (list(SURFACE_FEATURES) if spec.options else [])
                 + (list(RULE_STATE_FEATURES) if spec.rule_state else []))
        regime_names = [*regime_cols, *extra, *spec.extra_regime]
        return [*model_only, *_ranked(spec), *spec.extra, *regime_names], regime_names
    if isinstance(spec, CloseFeatureSpec):
        model_only, regime_cols, market_cols = _close_features(spec)
        regime_names = [*regime_cols, *market_cols, *spec.extra_regime]
        return [*model_only, *_close_ranked(spec), *spec.extra, *regime_names], regime_names
    model_only, regime_cols = _bar_features(spec)
    regime_names = [*regime_cols, *(["vix_log", "vix_available"] if spec.use_vix else []), *spec.extra_regime]
    return [*model_only, *spec.extra, *regime_names], regime_names


def left_out_features(spec: Spec) -> list[str]:
    """Daily features that a close-only spec cannot compute (they read open, high, low or volume)."""
    if not isinstance(spec, CloseFeatureSpec):
        return []
    full = FeatureSpec(short=spec.short, medium=spec.medium, long=spec.long, use_vix=False)
    have = set(feature_names(spec)[0])
    return [name for name in feature_names(full)[0] if name not in have]


def compute_features(
    bars: pl.DataFrame, spec: Spec, vix: pl.DataFrame | None = None, options: pl.DataFrame | None = None,
    market: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """``ts, symbol, close`` and every feature column, rows ordered by (symbol, ts).

    The Cboe VIX close is struck at 16:15 ET, after the 16:00 close at which
    daily decisions are made, so a bar gets the latest VIX close dated before
    its own day (the previous trading day's), and none when that is more than
    ``VIX_STALE_DAYS`` calendar days old; rows without one keep
    ``vix_log = 0`` and ``vix_available = 0``. ``options`` is
    an end-of-day option chain, used by intraday specs with ``options=True``;
    ``market`` the index's daily closes (``ts, close``), used by close-only
    specs with ``market=True``.

    Config errors name ``vix``, ``options``, ``market`` and ``features.<flag>``:
    the keys of the data config that give this function its arguments.
    """
    if market is not None and not (isinstance(spec, CloseFeatureSpec) and spec.market):
        raise ConfigError("market: an index series is read by close-only features with market=true only. "
                          "Fix: set market=null.", field="market")
    if not isinstance(spec, CloseFeatureSpec) and set(bars.columns) == set(CLOSE_ONLY_SCHEMA):
        raise ConfigError(f"features: {type(spec).__name__} computes {_needs_full_bars(spec)}, which read more "
                          "than the close (open, high, low, volume); "
                          "these bars are close-only (ts, symbol, close). Fix: set data.features._target_ to "
                          "dualhrq.features.engine.CloseFeatureSpec.", field="features")
    if isinstance(spec, CloseFeatureSpec):
        _check_close_only_extra(spec)
        for name, given in (("vix", vix), ("options", options)):
            if given is not None:
                raise ConfigError(f"{name}: close-only features do not read it. Fix: set {name}=null.", field=name)
        return _compute_close(validate_bars(bars, source="compute_features(bars)", close_only=True), spec, market)
    bars = validate_bars(bars, source="compute_features(bars)")
    if isinstance(spec, IntradayFeatureSpec):
        if vix is not None:
            raise ConfigError("vix: VIX is a daily series; intraday features do not use it. Fix: set vix=null.",
                              field="vix")
        return _compute_intraday(bars, spec, options)
    if options is not None:
        raise ConfigError("options: option features exist for intraday data only. Fix: set options=null.",
                          field="options")
    model_only, regime_cols = _bar_features(spec)
    exprs = {**model_only, **spec.extra, **_relative(spec, {**regime_cols, **spec.extra_regime})}
    query = bars.lazy().with_columns(e.over("symbol").alias(n) for n, e in exprs.items())
    if spec.use_vix:
        if vix is None:
            raise ConfigError("features.use_vix is true but no VIX series was given. "
                              "Fix: pass vix=load_vix() or set features.use_vix=false.", field="features.use_vix")
        query = query.join(_vix_known_at(bars, vix).lazy(), on="ts", how="left", maintain_order="left")
        query = query.with_columns(
            vix_log=(pl.col("vix") / _VIX_ANCHOR).log().fill_null(0.0),
            vix_available=pl.col("vix").is_not_null().cast(pl.Float64),
        )
    names, _ = feature_names(spec)
    return query.select("ts", "symbol", "close", *names).collect()


def _needs_full_bars(spec: FeatureSpec | IntradayFeatureSpec) -> list[str]:
    """The features of ``spec`` that read more than the close (open, high, low, volume, quotes)."""
    closes = CloseFeatureSpec(short=spec.short, medium=spec.medium, long=spec.long, cross_section=False,
                              market=False)
    have = {*feature_names(closes)[0], "vix_log", "vix_available", *spec.extra, *spec.extra_regime}
    return [n for n in feature_names(spec)[0] if n not in have]


def _check_close_only_extra(spec: CloseFeatureSpec) -> None:
    """Refuse a feature of the user's own that reads a column close-only bars do not have."""
    for kind in ("extra", "extra_regime"):
        for name, expr in getattr(spec, kind).items():
            lacking = sorted(set(expr.meta.root_names()) - {*CLOSE_ONLY_SCHEMA, "mkt_return"})
            if lacking:
                raise ConfigError(f"features.{kind}.{name} reads {lacking}, which close-only bars (ts, symbol, "
                                  "close) do not have. Fix: build it from the close, or use full bars.",
                                  field=f"features.{kind}.{name}")


def _relative(spec: Spec, regime_exprs: dict[str, pl.Expr]) -> dict[str, pl.Expr]:
    """The regime expressions as trailing z-scores over ``spec.regime_window`` bars (unchanged without one)."""
    if spec.regime_window is None:
        return regime_exprs
    return {name: pattern.zscore(e, spec.regime_window) for name, e in regime_exprs.items()}


def _bar_features(spec: FeatureSpec | IntradayFeatureSpec) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr]]:
    """(model-only features, regime features) as named per-symbol expressions.

    Amihud illiquidity enters as log(ILLIQ_medium / ILLIQ_long): its level
    mostly measures the asset's size (an identifier), its change a liquidity
    squeeze. Volatilities are per bar, from the medium window.
    """
    m, lg = spec.medium, spec.long
    o, h, low, c = (pl.col(x) for x in ("open", "high", "low", "close"))
    volume = regime.traded_volume(pl.col("volume"))
    r = regime.log_return(c)
    trend, shape, close_regime = _close_series(spec)
    model_only = {
        **trend,
        f"volume_z_{m}": pattern.zscore(volume.log(), m),
        "close_location": pattern.close_location(h, low, c),
        f"atr_{m}": pattern.average_true_range(h, low, c, m),
        "gap": pattern.gap(o, c),
        "body": pattern.body(o, c),
        **shape,
    }
    regime_cols = {
        **close_regime,
        f"parkinson_{m}": regime.rolling_volatility(regime.parkinson(h, low), m),
        f"garman_klass_{m}": regime.rolling_volatility(regime.garman_klass(o, h, low, c), m),
        f"rogers_satchell_{m}": regime.rolling_volatility(regime.rogers_satchell(o, h, low, c), m),
        f"amihud_{m}_{lg}": (
            regime.amihud_illiquidity(r, c, volume, m) / regime.amihud_illiquidity(r, c, volume, lg)
        ).log(),
    }
    return model_only, regime_cols


def _close_series(spec: Spec) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr], dict[str, pl.Expr]]:
    """What the close alone gives, shared by every daily spec: (trend inputs, drawdown and volatility-ratio
    inputs, volatility regime inputs), split so that full bars can place their range and volume inputs
    between the first two."""
    s, m, lg = spec.short, spec.medium, spec.long
    c = pl.col("close")
    r = regime.log_return(c)
    rv, bpv = regime.realized_variance(r, m), regime.bipower_variation(r, m)
    trend = {
        "log_return": r,
        f"mom_{s}": pattern.momentum(c, s),
        f"mom_{m}": pattern.momentum(c, m),
        f"mom_{lg}": pattern.momentum(c, lg),
        f"meanrev_z_{m}": pattern.zscore(c, m),
    }
    shape = {f"drawdown_{lg}": pattern.drawdown(c, lg), f"vol_ratio_{s}_{lg}": pattern.volatility_ratio(r, s, lg)}
    vol = {f"rvol_{m}": (rv / m).sqrt(), f"bpvol_{m}": (bpv / m).sqrt(), f"jump_share_{m}": regime.jump_share(rv, bpv)}
    return trend, shape, vol


def _close_features(spec: CloseFeatureSpec) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr], dict[str, pl.Expr]]:
    """(per-symbol inputs, per-symbol regime inputs, market regime inputs) of close-only bars.

    Beta and correlation read ``mkt_return``, the index's log return joined onto each bar by date.
    The market inputs are evaluated on the index's own series (:func:`_market_frame`), except the
    dispersion, a per-symbol trailing mean of ``xs_dispersion`` (the day's spread of returns).
    """
    lg = spec.long
    r = regime.log_return(pl.col("close"))
    trend, shape, regime_cols = _close_series(spec)
    model_only = {**trend, **shape}
    if spec.market:
        model_only |= {f"beta_{lg}": mkt.beta(r, pl.col("mkt_return"), lg),
                       f"corr_{lg}": mkt.correlation(r, pl.col("mkt_return"), lg)}
    m, c = spec.medium, pl.col("close")
    market_cols = {}
    if spec.cross_section:
        market_cols[f"xs_dispersion_{m}"] = pl.col("xs_dispersion").rolling_mean(m)
    if spec.market:
        market_cols |= {f"mkt_rvol_{m}": (regime.realized_variance(regime.log_return(c), m) / m).sqrt(),
                        f"mkt_mom_{m}": pattern.momentum(c, m),
                        f"mkt_drawdown_{lg}": pattern.drawdown(c, lg)}
    return model_only, regime_cols, market_cols


def _close_ranked(spec: CloseFeatureSpec) -> list[str]:
    """Close-only features also given as a cross-sectional rank (``rank_<name>``)."""
    if not spec.cross_section:
        return []
    return [f"rank_{n}" for n in (f"mom_{spec.medium}", f"mom_{spec.long}", f"rvol_{spec.medium}")]


def _compute_close(bars: pl.DataFrame, spec: CloseFeatureSpec, market: pl.DataFrame | None) -> pl.DataFrame:
    model_only, regime_cols, market_cols = _close_features(spec)
    query = bars.lazy()
    if spec.market:
        if market is None:
            raise ConfigError("features.market is true but no index series was given. Fix: set data.market to an "
                              "index source (load_sp500_index) or features.market=false.", field="features.market")
        index_cols = {n: e for n, e in market_cols.items() if n.startswith("mkt_")}
        query = query.join(_market_frame(market, index_cols).lazy(), on="ts", how="left", maintain_order="left")
    per_symbol = {**model_only, **spec.extra, **_relative(spec, {**regime_cols, **spec.extra_regime})}
    if spec.cross_section:
        # one window per step: the day's dispersion needs every symbol's return of that day first
        rvol = f"rvol_{spec.medium}"
        query = query.with_columns(_ret=regime.log_return(pl.col("close")).over("symbol"),
                                   _rvol=regime_cols[rvol].over("symbol"))
        query = query.with_columns(xs_dispersion=mkt.dispersion(pl.col("_ret")).fill_nan(None))
        per_symbol[f"xs_dispersion_{spec.medium}"] = market_cols[f"xs_dispersion_{spec.medium}"]
    query = query.with_columns(e.over("symbol").alias(n) for n, e in per_symbol.items())
    if spec.cross_section:
        # ranks of the raw volatility and momentum: ranks of their per-symbol z-scores would rank surprise
        raw = {rvol: pl.col("_rvol"), **{n: pl.col(n) for n in (f"mom_{spec.medium}", f"mom_{spec.long}")}}
        query = query.with_columns(cross_sectional_rank(raw[name.removeprefix("rank_")]).alias(name)
                                   for name in _close_ranked(spec))
    names, _ = feature_names(spec)
    return query.select("ts", "symbol", "close", *names).collect()


def _market_frame(market: pl.DataFrame, features: dict[str, pl.Expr]) -> pl.DataFrame:
    """``ts, mkt_return`` and the market ``features``, computed on the index's own consecutive closes."""
    missing = [c for c in ("ts", "close") if c not in market.columns]
    if missing:
        raise DataError(f"market: missing columns {missing}. Fix: pass the frame from load_sp500_index().")
    index = market.select(pl.col("ts").cast(pl.Datetime("us")), pl.col("close").cast(pl.Float64)).sort("ts")
    if not index["close"].is_finite().all() or (index["close"] <= 0).any():
        raise DataError("market: 'close' has non-finite or non-positive values. Fix: drop those rows.")
    if index["ts"].is_duplicated().any():
        raise DataError("market: duplicate 'ts' rows. Fix: keep one index close per day.")
    return index.select("ts", mkt_return=regime.log_return(pl.col("close")), **features)


def _vix_known_at(bars: pl.DataFrame, vix: pl.DataFrame) -> pl.DataFrame:
    """``ts, vix``: for every bar time, the latest VIX close of an earlier day (null when stale)."""
    days = bars.select(pl.col("ts").unique().sort()).with_columns(day=pl.col("ts").dt.truncate("1d"))
    closes = _checked_vix(vix).with_columns(pl.col("vix_ts").dt.truncate("1d")).sort("vix_ts")
    return days.join_asof(closes, left_on="day", right_on="vix_ts", strategy="backward",
                          allow_exact_matches=False, tolerance=f"{VIX_STALE_DAYS}d").select("ts", "vix")


def _checked_vix(vix: pl.DataFrame) -> pl.DataFrame:
    """VIX rows usable for the join; null or NaN values count as missing days."""
    missing = [c for c in ("ts", "vix") if c not in vix.columns]
    if missing:
        raise DataError(f"vix: missing columns {missing}. Fix: pass the frame from load_vix().")
    vix = vix.select(pl.col("ts").cast(pl.Datetime("us")).alias("vix_ts"), pl.col("vix").cast(pl.Float64))
    vix = vix.filter(pl.col("vix").is_not_nan())
    if (vix["vix"] <= 0).any():
        raise DataError("vix: non-positive 'vix' values. Fix: drop them or reload with load_vix().")
    if vix["vix_ts"].is_duplicated().any():
        raise DataError("vix: duplicate 'ts' rows. Fix: keep one VIX value per day.")
    return vix


def _intraday_features(spec: IntradayFeatureSpec) -> tuple[dict[str, pl.Expr], dict[str, pl.Expr]]:
    """(model-only features, regime features) of minute bars: the bar features plus the
    microstructure ones, and TSRV volatility beside the other volatilities.

    The session VWAP is the one feature that resets each day; it is written
    here with its own ``.over("symbol", "session")``.
    """
    s, m, lg = spec.short, spec.medium, spec.long
    h, low, c = (pl.col(x) for x in ("high", "low", "close"))
    volume = regime.traded_volume(pl.col("volume"))
    session_vwap = micro.vwap(micro.typical_price(h, low, c), pl.col("volume")).over("symbol", "session")
    model_only, bar_regime = _bar_features(spec)
    model_only |= {
        "vwap_deviation": micro.vwap_deviation(c, session_vwap),
        **{f"{name}_{w}": expr for w in (s, m) for name, expr in _flow(spec, w).items()},
        f"uptick_share_{m}": micro.uptick_share(c, m),
        f"zero_return_share_{m}": micro.zero_return_share(c, m),
        "session_progress": micro.session_progress(pl.col("ts")),
    }
    if spec.quotes:
        spread = micro.relative_spread(pl.col("bid"), pl.col("ask"))
        model_only["spread"] = spread
        model_only[f"spread_z_{lg}"] = pattern.zscore(spread, lg)
    if spec.trades:
        model_only[f"trade_size_ratio_{s}_{lg}"] = micro.mean_trade_size_ratio(volume, pl.col("trades"), s, lg)
    tsrv = regime.two_scale_realized_variance(c.log(), lg, spec.tsrv_k).clip(lower_bound=0)
    regime_cols = {}
    for name, expr in bar_regime.items():
        regime_cols[name] = expr
        if name == f"bpvol_{m}":
            regime_cols[f"tsrv_vol_{lg}"] = (tsrv / lg).sqrt()
    return model_only, regime_cols


def _flow(spec: IntradayFeatureSpec, window: int) -> dict[str, pl.Expr]:
    """Order-flow features over ``window`` bars: from the quotes when the bars carry them, else the tick rule."""
    if spec.quotes:
        bid, bid_size, ask, ask_size = (pl.col(x) for x in ("bid", "bid_size", "ask", "ask_size"))
        return {"depth_imbalance": micro.depth_imbalance(bid_size, ask_size, window),
                "ofi": micro.order_flow_imbalance(bid, bid_size, ask, ask_size, window)}
    return {"signed_volume": micro.signed_volume_imbalance(pl.col("close"), pl.col("volume"), window)}


def _ranked(spec: IntradayFeatureSpec) -> list[str]:
    """Features also given as a cross-sectional rank (``rank_<name>``)."""
    if not spec.cross_section:
        return []
    flow = "depth_imbalance" if spec.quotes else "signed_volume"
    return [f"rank_{n}" for n in (f"mom_{spec.medium}", "vwap_deviation", f"{flow}_{spec.medium}",
                                  f"rvol_{spec.medium}")]


def intraday_query(bars: pl.LazyFrame, spec: IntradayFeatureSpec) -> pl.LazyFrame:
    """The lazy plan of every columnar intraday feature over bars sorted by (symbol, ts).

    Returns ``ts, symbol, close`` and the features in ``feature_names``
    order, less ``vol_regime``, the option-surface and the rule-state features
    (model fits and market-rule replays, added by ``compute_features``).
    """
    _check_intraday_columns(bars.collect_schema().names(), spec)
    model_only, regime_cols = _intraday_features(spec)
    per_symbol = {**model_only, **spec.extra, **_relative(spec, {**regime_cols, **spec.extra_regime})}
    session = {n: e for n, e in per_symbol.items() if n == "vwap_deviation"}
    query = bars.with_columns(session=pl.col("ts").dt.date()).with_columns(
        *(e.over("symbol").alias(n) for n, e in per_symbol.items() if n not in session),
        *(e.alias(n) for n, e in session.items()),
    )
    if spec.cross_section:
        query = query.with_columns(
            cross_sectional_rank(pl.col(name.removeprefix("rank_"))).alias(name) for name in _ranked(spec))
    fitted = {"vol_regime", *SURFACE_FEATURES, *RULE_STATE_FEATURES}
    names = [n for n in feature_names(spec)[0] if n not in fitted]
    return query.select("ts", "symbol", "close", *names)


def _check_intraday_columns(columns: list[str], spec: IntradayFeatureSpec) -> None:
    needs = {"quotes": ["bid", "ask", "bid_size", "ask_size"], "trades": ["trades"],
             "rule_state": ["bid", "ask", "trades", "luld_tier"]}
    for flag, cols in needs.items():
        missing = [c for c in cols if c not in columns]
        if getattr(spec, flag) and missing:
            raise DataError(f"data.features.{flag}=true but the bars lack {missing}. "
                            f"Fix: supply these columns or set data.features.{flag}=false.")


def _compute_intraday(bars: pl.DataFrame, spec: IntradayFeatureSpec, options: pl.DataFrame | None) -> pl.DataFrame:
    frame = intraday_query(bars.lazy(), spec).collect()
    if spec.vol_regime:
        frame = frame.join(_vol_regime(bars, spec), on=["symbol", "ts"], how="left", maintain_order="left")
    if spec.options:
        if options is None:
            raise ConfigError("features.options=true but no option chain was given. Fix: set options to a chain "
                              "source or features.options=false.", field="features.options")
        frame = _previous_session_surface(frame, options)
    if spec.rule_state:
        frame = frame.join(rule_state_features(bars), on=["symbol", "ts"], how="left", maintain_order="left")
    return frame


def _previous_session_surface(frame: pl.DataFrame, chain: pl.DataFrame) -> pl.DataFrame:
    """Join each bar to the surface features of the latest chain dated before the bar's session.

    A chain is an end-of-day snapshot, so the session it is dated by may not use it.
    """
    surface = surface_features(chain).select("date", "symbol", *SURFACE_FEATURES).sort("date")
    keyed = frame.with_row_index("_row").with_columns(_session=pl.col("ts").dt.date()).sort("_session")
    joined = keyed.join_asof(surface, left_on="_session", right_on="date", by="symbol", strategy="backward",
                             allow_exact_matches=False, check_sortedness=False)  # both sorted above
    return joined.sort("_row").drop("_row", "_session", "date")


def _vol_regime(bars: pl.DataFrame, spec: IntradayFeatureSpec) -> pl.DataFrame:
    """``symbol, ts, vol_regime``: each bar gets the regime probability of the last completed block."""
    minute = pl.col("ts").dt.hour().cast(pl.Int32) * 60 + pl.col("ts").dt.minute().cast(pl.Int32)
    keyed = bars.select(
        "symbol", "ts", session=pl.col("ts").dt.date(), block=minute // spec.regime_block,
        r2=regime.log_return(pl.col("close")).over("symbol", pl.col("ts").dt.date()).fill_null(0.0) ** 2,
    )  # intraday returns only: overnight gaps would swamp the first block of each day
    blocks = keyed.group_by("symbol", "session", "block", maintain_order=True).agg(rv=pl.col("r2").sum())
    parts = []
    for (symbol,), one in blocks.group_by("symbol", maintain_order=True):
        sessions = one["session"].unique(maintain_order=True)
        fit_n = int(one["session"].is_in(sessions[: spec.regime_fit_days].implode()).sum())
        if fit_n >= one.height:
            raise DataError(f"data.features.regime_fit_days={spec.regime_fit_days} covers all of {symbol}'s "
                            f"{len(sessions)} sessions. Fix: lower it or load more days.")
        log_rv = one.select(x=pl.col("rv").add(1e-12).log())["x"]
        # remove the intraday pattern (mean per block of the day, from the fit sessions), leaving regimes
        seasonal = one.head(fit_n).with_columns(x=log_rv.head(fit_n)).group_by("block").agg(pl.col("x").mean())
        level = one.join(seasonal, on="block", how="left", maintain_order="left")["x"].fill_null(
            float(log_rv.head(fit_n).mean()))
        prob = markov_volatility_regime((log_rv - level).to_numpy(), fit_n)
        parts.append(one.select("symbol", "session", "block").with_columns(
            vol_regime=pl.Series(prob, nan_to_null=True).shift(1)))  # known only once the block is complete
    return keyed.join(pl.concat(parts), on=["symbol", "session", "block"], how="left",
                      maintain_order="left").select("symbol", "ts", "vol_regime")
