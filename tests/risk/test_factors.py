"""Factor decomposition against scikit-learn, numpy and hand-built series with known loadings."""

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.linear_model import LinearRegression

from dualhrq.data.sources import load_bundled, load_sp500_index
from dualhrq.errors import ConfigError, DataError
from dualhrq.risk.factors import FactorModel, daily_factors, monthly_french, pca_factors


def planted(n=2_000, seed=0, noise=0.01):
    """Two correlated factors and ``r = 0.0002 + 0.5 f1 - 0.3 f2 + noise``."""
    rng = np.random.default_rng(seed)
    f = rng.multivariate_normal([0, 0], [[1e-4, 3e-5], [3e-5, 4e-4]], size=n)
    return 0.0002 + f @ [0.5, -0.3] + rng.normal(0, noise, n), f


def test_planted_betas_are_recovered_and_match_sklearn():
    y, f = planted()
    model = FactorModel().fit(y, f)
    ref = LinearRegression().fit(f, y)
    assert model.betas_ == pytest.approx(ref.coef_, rel=1e-9)
    assert model.alpha_ == pytest.approx(ref.intercept_, rel=1e-7)
    # within four standard errors of the planted loadings
    se = 0.01 / np.sqrt(len(y) * np.diag(np.cov(f.T)))
    assert np.all(np.abs(model.betas_ - [0.5, -0.3]) < 4 * se)
    fitted = ref.predict(f) - ref.intercept_
    assert model.factor_share_ == pytest.approx(np.var(fitted) / np.var(y), rel=1e-9)
    assert model.r2_ == pytest.approx(ref.score(f, y), rel=1e-9)
    assert model.factor_variance_ == pytest.approx(np.var(fitted, ddof=1), rel=1e-9)
    assert model.idiosyncratic_variance_ == pytest.approx(np.var(y - ref.predict(f), ddof=1), rel=1e-9)
    assert model.contributions_.sum() == pytest.approx(model.factor_share_, rel=1e-9)
    # Euler contributions by hand: beta_i cov(f_i, fitted) / var(r)
    by_hand = [ref.coef_[i] * np.cov(f[:, i], fitted)[0, 1] / np.var(y, ddof=1) for i in range(2)]
    assert model.contributions_ == pytest.approx(by_hand, rel=1e-9)
    assert model.summary()["factor"].to_list() == ["f1", "f2"]


def test_a_hedging_factor_contributes_negatively_and_a_pure_factor_series_is_all_factor():
    rng = np.random.default_rng(1)
    f1 = rng.normal(0, 0.01, 500)
    f2 = 0.9 * f1 + rng.normal(0, 0.002, 500)  # f2 rides on f1; a short f2 position hedges the long f1
    model = FactorModel().fit(f1 - 0.5 * f2, np.column_stack([f1, f2]))
    assert model.factor_share_ == pytest.approx(1.0, abs=1e-9) and model.idiosyncratic_variance_ < 1e-20
    assert model.contributions_[1] < 0 < model.contributions_[0]


def frame(days, values, name):
    return pl.DataFrame({"ts": days, name: values})


def test_frames_use_the_days_where_every_factor_exists_and_name_the_one_that_limits_them():
    y, f = planted(n=300)
    days = [datetime(2020, 1, 1) + timedelta(days=i) for i in range(300)]
    f2 = pl.Series(f[:, 1]).scatter(range(200), None)  # the second factor starts on day 200
    factors = pl.DataFrame({"ts": days, "mkt": f[:, 0], "late": f2})
    model = FactorModel(min_obs=50).fit(frame(days, y, "book"), factors)
    assert model.n_obs_ == 100 and model.factor_names_ == ("mkt", "late")
    ref = LinearRegression().fit(f[200:], y[200:])
    assert model.betas_ == pytest.approx(ref.coef_, rel=1e-9)
    with pytest.raises(DataError, match=r"only 100 days .* min_obs=101: factor 'late' covers 2020-07-19\.\.2020-10-26"):
        FactorModel(min_obs=101).fit(frame(days, y, "book"), factors)


def test_bad_inputs_are_refused():
    y, f = planted(n=100)
    with pytest.raises(ConfigError, match="min_obs must be an integer >= 2"):
        FactorModel(min_obs=1)
    with pytest.raises(DataError, match="fewer than min_obs=200"):
        FactorModel(min_obs=200).fit(y, f)
    with pytest.raises(DataError, match="same T"):
        FactorModel().fit(y[:-1], f)
    with pytest.raises(DataError, match=r"factors \['f2'\] are constant"):
        FactorModel().fit(y, np.column_stack([f[:, 0], np.ones(100)]))
    with pytest.raises(DataError, match="finite"):
        FactorModel().fit(np.r_[np.nan, y[1:]], f)
    with pytest.raises(ConfigError, match="both be polars frames"):
        FactorModel().fit(frame(list(range(100)), y, "r"), f)
    with pytest.raises(ConfigError, match="not fitted"):
        FactorModel().summary()


def test_daily_factors_follow_their_sources_and_are_null_outside_their_spans():
    out = daily_factors("1998-12-30", "2019-01-04")
    def span(column):
        known = out.filter(pl.col(column).is_not_null())["ts"]
        return known.min().date(), known.max().date()
    assert span("market") == (date(1998, 12, 30), date(2019, 1, 4))  # cut by start and end
    assert span("nasdaq_minus_sp500") == (date(1999, 1, 5), date(2018, 12, 31))
    assert span("vix_change") == (date(2014, 1, 6), date(2019, 1, 3))
    assert span("mtum") == (date(2014, 1, 3), date(2019, 1, 4))
    # the values against the loaders' closes
    spx = load_sp500_index().filter(pl.col("ts").dt.date().is_in([date(2008, 10, 10), date(2008, 10, 13)]))["close"]
    day = out.filter(pl.col("ts") == datetime(2008, 10, 13)).row(0, named=True)
    assert day["market"] == pytest.approx(spx[1] / spx[0] - 1, rel=1e-12)
    bundled = load_bundled(start="2008-10-10", end="2008-10-13").sort("symbol", "ts")
    nq, sp = (bundled.filter(pl.col("symbol") == s)["close"] for s in ("NASDAQ", "SP500"))
    assert day["nasdaq_minus_sp500"] == pytest.approx(nq[1] / nq[0] - sp[1] / sp[0], rel=1e-12)
    with pytest.raises(ConfigError, match="start must be an ISO date"):
        daily_factors("2019-13-01")
    with pytest.raises(ConfigError, match="start must be on or before end"):
        daily_factors("2019-01-02", "2018-01-02")
    with pytest.raises(DataError, match="select no days"):
        daily_factors("2023-02-01")


def french_months():
    """Ken French's months and factors (fractions), read independently of the code under test."""
    from arch.data import frenchdata

    raw = frenchdata.load()
    return [(int(m) // 100, int(m) % 100) for m in raw.index.astype("int64")], raw / 100.0


def test_monthly_french_compounds_days_to_months_and_recovers_planted_loadings():
    months, french = french_months()
    rows = []
    for (year, month), (mkt, smb, _hml, rf) in list(zip(months, french.to_numpy(), strict=True))[-120:]:
        target = rf + 0.003 + 1.2 * mkt - 0.4 * smb  # a month's simple return
        rows += [(datetime(year, month, 3), 0.01), (datetime(year, month, 20), (1 + target) / 1.01 - 1)]
    daily = pl.DataFrame(rows, schema={"ts": pl.Datetime("us"), "r": pl.Float64}, orient="row")
    model = monthly_french(daily)
    assert model.factor_names_ == ("Mkt-RF", "SMB", "HML") and model.n_obs_ == 120
    assert model.betas_ == pytest.approx([1.2, -0.4, 0.0], abs=1e-9)
    assert model.alpha_ == pytest.approx(0.003, abs=1e-10) and model.factor_share_ == pytest.approx(1.0)
    only_market = monthly_french(daily, factors=["Mkt-RF"])
    assert only_market.factor_names_ == ("Mkt-RF",)
    with pytest.raises(ConfigError, match="factors must be one of"):
        monthly_french(daily, factors=["UMD"])
    with pytest.raises(DataError, match="fewer than min_obs=121"):
        monthly_french(daily, min_obs=121)


def test_pca_factors_are_the_covariance_eigenvectors():
    rng = np.random.default_rng(2)
    loadings = rng.normal(size=(2, 8))
    x = rng.normal(size=(1_000, 2)) * [0.02, 0.01] @ loadings + rng.normal(0, 0.002, (1_000, 8))
    out = pca_factors(x, 2)
    eigval, eigvec = np.linalg.eigh(np.cov(x.T))
    assert out.explained_variance_ratio == pytest.approx(eigval[::-1][:2] / eigval.sum(), rel=1e-9)
    assert np.abs(np.sum(out.loadings * eigvec[:, ::-1][:, :2].T, axis=1)) == pytest.approx([1, 1], abs=1e-9)
    assert out.returns == pytest.approx((x - x.mean(axis=0)) @ out.loadings.T, abs=1e-12)
    assert out.explained_variance_ratio.sum() > 0.95  # two planted factors carry the panel
    with pytest.raises(ConfigError, match="n_components must be at most min"):
        pca_factors(x, 9)
    with pytest.raises(ConfigError, match="n_components must be a positive integer"):
        pca_factors(x, 0)
    with pytest.raises(DataError, match="finite"):
        pca_factors(x[:, 0], 1)
