"""TSRV, RV and BPV on simulated Brownian paths whose integrated variance is known.

Log prices follow dX = sigma(t) dW on one day with a deterministic intraday
sigma(t), so each path's integrated variance (IV) is the sum of its step
variances. Many paths are evaluated at once, one per ``path`` partition.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from dualhrq.features import regime

N_PATHS = 200
SIGMA0 = 0.01  # daily volatility scale


def simulate(n: int, seed: int, noise: float = 0.0, jump: float = 0.0) -> tuple[pl.DataFrame, np.ndarray]:
    """``path, x`` frames of n returns per path (n + 1 observed log prices) and each path's IV."""
    rng = np.random.default_rng(seed)
    t_mid = (np.arange(n) + 0.5) / n
    step_var = (SIGMA0 * (1 + 0.5 * np.sin(2 * np.pi * t_mid))) ** 2 / n
    increments = rng.standard_normal((N_PATHS, n)) * np.sqrt(step_var)
    if jump:
        increments[:, n // 2] += jump
    x = np.concatenate([np.zeros((N_PATHS, 1)), np.cumsum(increments, axis=1)], axis=1)
    x += noise * rng.standard_normal(x.shape)
    frame = pl.DataFrame({"path": np.repeat(np.arange(N_PATHS), n + 1), "x": x.ravel()})
    return frame, np.full(N_PATHS, step_var.sum())


def whole_path(frame: pl.DataFrame, expr: pl.Expr) -> np.ndarray:
    """``expr`` (per path) at each path's last observation."""
    return frame.select(pl.col("path"), v=expr.over("path")).group_by("path", maintain_order=True).last()[
        "v"].to_numpy()


def rv(n: int) -> pl.Expr:
    return regime.realized_variance(pl.col("x").diff(), n)


def bpv(n: int) -> pl.Expr:
    # n - 1 adjacent products fit in n returns; rescale to n terms
    return regime.bipower_variation(pl.col("x").diff(), n - 1) * n / (n - 1)


def tsrv(n: int, k: int) -> pl.Expr:
    return regime.two_scale_realized_variance(pl.col("x"), n, k)


def test_rv_and_bpv_are_unbiased_and_consistent_without_noise() -> None:
    errors = {}
    for n in (50, 500, 5000):
        frame, iv = simulate(n, seed=n)
        for name, expr in (("rv", rv(n)), ("bpv", bpv(n))):
            ratio = whole_path(frame, expr) / iv
            se = ratio.std(ddof=1) / np.sqrt(N_PATHS)
            assert abs(ratio.mean() - 1) < 4 * se + 0.01 * (n == 50), (name, n, ratio.mean(), se)
            errors[name, n] = np.sqrt(np.mean((ratio - 1) ** 2))
    for name in ("rv", "bpv"):
        # root-n consistency: 100 times more returns, about 10 times less error
        assert errors[name, 5000] < errors[name, 50] / 6
        assert errors[name, 500] < errors[name, 50] / 2


def test_bpv_ignores_a_jump_that_rv_absorbs() -> None:
    n, size = 2000, 0.02
    frame, iv = simulate(n, seed=1, jump=size)
    realized, bipower = whole_path(frame, rv(n)), whole_path(frame, bpv(n))
    np.testing.assert_allclose(np.mean(realized - iv), size**2, rtol=0.05)
    # BPV keeps only the jump's products with its two neighbours: (pi/2) |J| 2 E|r| = sqrt(2 pi) |J| sigma_step,
    # with sigma_step = SIGMA0 / sqrt(n) at mid-day; that vanishes as n grows, unlike RV's J^2
    leak = np.sqrt(2 * np.pi) * size * SIGMA0 / np.sqrt(n)
    np.testing.assert_allclose(np.mean(bipower - iv), leak, rtol=0.25)
    assert leak < 0.05 * size**2
    share = whole_path(frame, regime.jump_share(rv(n), bpv(n)))
    np.testing.assert_allclose(np.median(share), size**2 / (iv[0] + size**2), atol=0.03)


def test_tsrv_is_robust_to_microstructure_noise_where_rv_is_not() -> None:
    n, noise = 23400, 0.0005  # one-second sampling over a 6.5 h day, 5 bp noise
    frame, iv = simulate(n, seed=7, noise=noise)
    realized = whole_path(frame, rv(n))
    # RV estimates the noise, 2 n E[e^2], not the IV
    np.testing.assert_allclose(np.mean(realized), iv[0] + 2 * n * noise**2, rtol=0.02)
    assert np.mean(realized / iv) > 50
    two_scale = whole_path(frame, tsrv(n, k=400))
    ratio = two_scale / iv
    assert abs(ratio.mean() - 1) < 4 * ratio.std(ddof=1) / np.sqrt(N_PATHS) + 0.02
    assert np.sqrt(np.mean((ratio - 1) ** 2)) < 0.35


def test_tsrv_without_noise_is_close_to_rv() -> None:
    n = 2000
    frame, iv = simulate(n, seed=3)
    np.testing.assert_allclose(np.mean(whole_path(frame, tsrv(n, k=10)) / iv), 1.0, atol=0.03)


def test_tsrv_matches_its_formula_on_a_short_series() -> None:
    x = np.array([0.0, 0.01, -0.005, 0.02, 0.015, 0.03, 0.01])
    n, k = 6, 2
    rv_all = np.sum(np.diff(x) ** 2)
    rv_avg = np.sum((x[k:] - x[:-k]) ** 2) / k
    n_bar = (n - k + 1) / k
    expected = (rv_avg - n_bar / n * rv_all) * n / ((k - 1) * n_bar)
    got = pl.DataFrame({"x": x}).select(tsrv(n, k)).to_series().to_numpy()
    assert np.isnan(got[:-1]).all() | pl.Series(got[:-1]).is_null().all()
    np.testing.assert_allclose(got[-1], expected, rtol=1e-12)


def test_tsrv_is_unbiased_in_a_small_window_at_constant_volatility() -> None:
    # the feature's defaults (120 one-minute returns, 5 subsamples) with noise as large as a minute's move:
    # E[RV_avg] = (n - k + 1) s^2 + 2 nbar e^2 and E[RV_all] = n s^2 + 2 n e^2, so the scaled difference has
    # mean n s^2 exactly; ZMA's (1 - nbar/n)^-1 alone gives (k - 1) nbar / (n - nbar) = 0.959 of it
    n, k, paths, step, noise = 120, 5, 4000, 1e-3, 1e-3
    rng = np.random.default_rng(8)
    x = np.concatenate([np.zeros((paths, 1)), np.cumsum(rng.normal(0, step, (paths, n)), axis=1)], axis=1)
    x += rng.normal(0, noise, x.shape)
    frame = pl.DataFrame({"path": np.repeat(np.arange(paths), n + 1), "x": x.ravel()})
    ratio = whole_path(frame, tsrv(n, k)) / (n * step**2)
    se = ratio.std(ddof=1) / np.sqrt(paths)
    assert se < 0.01 and abs(ratio.mean() - 1) < 4 * se, (ratio.mean(), se)
