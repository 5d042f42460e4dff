"""A volatility regime from a two-state Markov-switching model (Hamilton 1989).

The log realized variance of consecutive blocks of bars is modelled as a
constant plus noise whose mean and variance switch with a hidden two-state
Markov chain (statsmodels' ``MarkovRegression``). Parameters are fitted by
maximum likelihood with the EM algorithm (Hamilton 1990; EM alone found
higher likelihoods than statsmodels' default short-EM-then-BFGS on these
short series, which stays the fallback) on a burn-in prefix only; afterwards the Hamilton filter
gives ``P(high-volatility state | blocks <= b)``, which uses nothing later
than block ``b``. The burn-in blocks get no value, so no sample is ever
scored with parameters fitted on its own future.
"""

from __future__ import annotations

import warnings

import numpy as np
from statsmodels.tools.sm_exceptions import ConvergenceWarning, EstimationWarning
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from dualhrq.errors import DataError

_EM_ITERATIONS = 100


def markov_volatility_regime(log_variance: np.ndarray, fit_n: int) -> np.ndarray:
    """Filtered probability of the high-mean (high-volatility) state per observation; NaN for the first
    ``fit_n`` observations, on which the model is fitted."""
    x = np.asarray(log_variance, dtype=float)
    if not 20 <= fit_n <= len(x):
        raise DataError(f"volatility regime: needs 20 <= fit_n <= {len(x)} observations to fit on, got {fit_n}. "
                        "Fix: raise data.features.regime_fit_days or load more days.")
    if not np.isfinite(x).all():
        raise DataError("volatility regime: log variances must be finite (a block without price moves?).")
    z = (x - x[:fit_n].mean()) / max(float(x[:fit_n].std()), 1e-12)  # scaled by the fit sample only
    fitted = None
    with warnings.catch_warnings():
        for warning in (ConvergenceWarning, EstimationWarning, RuntimeWarning):
            warnings.simplefilter("ignore", warning)
        for options in ({"em_iter": _EM_ITERATIONS, "maxiter": 0}, {}):  # EM alone, then statsmodels' default
            try:
                fitted = MarkovRegression(z[:fit_n], k_regimes=2, trend="c", switching_variance=True).fit(
                    disp=False, **options)
            except (np.linalg.LinAlgError, RuntimeError, ValueError):
                continue
            if np.isfinite(fitted.params).all():
                break
            fitted = None
        if fitted is None:
            raise DataError(f"volatility regime: the two-state model does not fit the first {fit_n} blocks "
                            "(one regime only?). Fix: raise data.features.regime_fit_days or set "
                            "data.features.vol_regime=false.")
        model = MarkovRegression(z, k_regimes=2, trend="c", switching_variance=True)
        probs = model.filter(fitted.params).filtered_marginal_probabilities
    names = list(model.param_names)
    high = int(np.argmax([fitted.params[names.index("const[0]")], fitted.params[names.index("const[1]")]]))
    out = np.asarray(probs)[:, high].copy()
    out[:fit_n] = np.nan
    return out
