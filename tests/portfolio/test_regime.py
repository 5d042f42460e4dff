from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from dualhrq.errors import ConfigError, DataError
from dualhrq.portfolio.regime import REGIMES, VolatilityRegime


def _days(n: int) -> pl.Series:
    return pl.Series("ts", [datetime(2019, 1, 1) + timedelta(days=i) for i in range(n)]).cast(pl.Datetime("us"))


def _market(n: int = 400, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    scale = np.where((np.arange(n) > 250) & (np.arange(n) < 300), 4.0, 1.0)  # a volatile spell
    return pl.DataFrame({"ts": _days(n), "ret": rng.standard_t(4, size=n) * 0.01 * scale})


def _by_hand(ret: np.ndarray, spec: VolatilityRegime, vix: np.ndarray | None = None) -> list[str | None]:
    """The regimes worked with numpy, one day at a time, from that day's data and earlier only."""
    vols: list[float] = []
    out: list[str | None] = []
    for t in range(ret.size):
        if t + 1 < spec.window:
            out.append(None)
            continue
        vols.append(float(np.std(ret[t + 1 - spec.window:t + 1], ddof=1)))
        if len(vols) < spec.min_history:
            out.append(None)
            continue
        v = vols[-1]
        if v > np.quantile(vols, spec.crisis_quantile) or (vix is not None and vix[t] >= spec.vix_crisis):
            out.append("crisis")
        elif v > np.quantile(vols, spec.high_quantile):
            out.append("high_vol")
        else:
            out.append("low_vol")
    return out


def test_regimes_match_a_day_by_day_computation():
    market = _market()
    spec = VolatilityRegime(window=20, min_history=30)
    out = spec.classify(market)
    assert out.columns == ["ts", "regime"] and out["ts"].equals(market["ts"])
    assert out["regime"].to_list() == _by_hand(market["ret"].to_numpy(), spec)
    assert set(out["regime"].drop_nulls()) == set(REGIMES)
    assert out["regime"].null_count() == (20 - 1) + (30 - 1)


def test_nothing_after_the_day_is_used():
    market = _market()
    spec = VolatilityRegime(window=10, min_history=20)
    before = spec.classify(market)["regime"].to_list()
    for t in (40, 200, 260):
        changed = market.with_columns(
            ret=pl.when(pl.int_range(pl.len()) > t).then(pl.col("ret") * 10 + 0.05).otherwise(pl.col("ret")))
        after = spec.classify(changed)["regime"].to_list()
        assert after[:t + 1] == before[:t + 1]
        assert after[t + 1:] != before[t + 1:]


def test_vix_at_the_threshold_is_a_crisis():
    n = 120
    # volatility falling every day: each reading is the lowest so far, so low_vol on volatility alone
    market = pl.DataFrame({"ts": _days(n), "ret": np.tile([0.01, -0.01], n // 2) * 0.99 ** np.arange(n)})
    vix = pl.DataFrame({"ts": _days(n)[[100, 101, 110]], "vix": [40.0, 39.99, 55.0]})
    spec = VolatilityRegime(window=10, min_history=20)
    out = spec.classify(market, vix)["regime"].to_list()
    assert out[100] == "crisis" and out[101] == "low_vol" and out[110] == "crisis"
    assert out[102:110] == ["low_vol"] * 8  # a day without a VIX close is judged by volatility alone
    vix_all = np.full(n, np.nan)
    vix_all[[100, 101, 110]] = [40.0, 39.99, 55.0]
    assert out == _by_hand(market["ret"].to_numpy(), spec, vix_all)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"window": 1}, r"^window must be an integer >= 2, got 1"),
    ({"high_quantile": 1.0}, r"^high_quantile must be a number in \(0, 1\)"),
    ({"crisis_quantile": 0.4}, r"^crisis_quantile must be above high_quantile \(0.5\), got 0.4"),
    ({"vix_crisis": 0.0}, r"^vix_crisis must be a positive number"),
    ({"min_history": 0}, r"^min_history must be an integer >= 1"),
])
def test_bad_thresholds_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        VolatilityRegime(**kwargs)


def test_bad_market_series():
    market = _market(50)
    with pytest.raises(DataError, match=r"market lacks columns \['ret'\]"):
        VolatilityRegime().classify(market.rename({"ret": "r"}))
    with pytest.raises(DataError, match="market.ts must be non-null and strictly increasing"):
        VolatilityRegime().classify(market.reverse())
    with pytest.raises(DataError, match="market.ret holds null"):
        VolatilityRegime().classify(market.with_columns(ret=pl.when(pl.int_range(pl.len()) == 5).then(None)
                                                        .otherwise(pl.col("ret"))))
    with pytest.raises(DataError, match="vix lacks columns"):
        VolatilityRegime().classify(market, market)
