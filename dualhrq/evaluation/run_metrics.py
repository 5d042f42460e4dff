"""The run-level metrics a training job logs, and which data/backtest combination produces each.

Gates name run metrics, so a gate's metric is checked against this catalogue
before any data is read: a name outside it is a typo, or a metric of the
user's own that the gate must declare ``external``. A name the catalogue
knows but this job's combination never logs (the rule engine's counts under
the close-to-close replay, the regime labels' figures without regime
conditioning) leaves its gate out of the job's gate set, with the reason.
The end-to-end tests compare the catalogue with what real jobs log.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydra.utils import get_class, get_object
from omegaconf import DictConfig, OmegaConf

from dualhrq.data.planted import PlantedMarket
from dualhrq.market.engine import REASONS
from dualhrq.portfolio.strict_sim import RISK_COUNTS, StrictSimBacktest
from dualhrq.training.conditioning import ConditioningFit
from dualhrq.validation.baselines import baseline_names
from dualhrq.validation.evidence import baseline_metrics
from dualhrq.validation.oos import OBJECTIVES, SIM_PREFIX

# the strict simulator's replay details: book figures, the rule engine's daily counts and the pre-trade and
# kill-switch counts, summed over folds
SIM = frozenset(SIM_PREFIX + k for k in ("sortino", "hit_rate", "total_return", "fills", "rejections",
                                         "violations", *(f"rejected_{r}" for r in REASONS.values()), *RISK_COUNTS))
# what the CPCV purge left out after a test block, logged by every job
SPLIT = frozenset({"validation/embargo_days_effective"})
# a planted market's closed-form Sharpe bound (data=synthetic_planted)
PLANTED = frozenset({"data/planted_sharpe_bound"})
# how much the network's inputs say about the symbol, on each fold's training and test samples, and the feature
# columns the screen zeroed, for every job
INPUTS = frozenset({"inputs/mi_symbol_bits", "inputs/mi_symbol_bits_test", "inputs/features_dropped"})
# the conditioning report, for every conditioning (zero without one)
CONTEXT = frozenset({"conditioning/mi_symbol_bits", "conditioning/mi_weekday_bits", "conditioning/mi_month_bits"})
# fitted regime labels and the regime classifier
REGIME = frozenset({"regime/switches_per_day", "regime/label_share_max", "regime/classifier_switches_per_day",
                    "conditioning/inputs_dropped"})
# the pattern library and its retrieval
PATTERNS = frozenset({f"patterns/{k}" for k in ("encoder_variance", "size", "added", "expired", "evicted",
                                                 "quality_mean", "scored_share", "code_perplexity")}
                     | {f"retrieval/{k}" for k in ("calls", "ok", "timeouts", "errors", "skipped", "fail_open_rate",
                                                    "breaker_trips", "latency_p50_ms", "latency_p99_ms")})

# the final model's fit on all the data (validation.refit=true)
REFIT = frozenset({"refit/steps", "refit/seconds", "refit/n_train"})


@dataclass(frozen=True)
class RunMetrics:
    """What this job logs (``logged``) and the known metrics it never logs, each with the reason."""

    logged: frozenset[str]
    never: dict[str, str]

    @property
    def known(self) -> frozenset[str]:
        return self.logged | frozenset(self.never)


def run_metrics(cfg: DictConfig) -> RunMetrics:
    """The catalogue for the job ``cfg``: its backtest, conditioning, baselines and model budget."""
    logged = set(OBJECTIVES | INPUTS | CONTEXT | SPLIT) | {f"params/{k}" for k in cfg.model.budget}
    for name in baseline_names(OmegaConf.to_container(cfg.validation.baselines, resolve=True)):
        logged |= baseline_metrics(name)
    never: dict[str, str] = {}
    target = cfg.backtest._target_
    if issubclass(get_class(target), StrictSimBacktest):
        logged |= SIM
    else:
        never |= dict.fromkeys(SIM, f"is counted only by the rule-exact simulator (backtest=strict_sim); this "
                                    f"job's backtest {target} has no rule engine")
    source = get_object(cfg.data.source._target_) if "_target_" in cfg.data.source else None
    if isinstance(source, type) and issubclass(source, PlantedMarket):
        logged |= PLANTED
    else:
        never |= dict.fromkeys(PLANTED, "is known only for a planted market (data=synthetic_planted)")
    fit = ConditioningFit.from_config(cfg.model.conditioning)
    if fit.labels is not None:
        logged |= REGIME
    else:
        never |= dict.fromkeys(REGIME, "comes only from regime labels (model/conditioning=regime or regime_rag); "
                                       "this job's conditioning fits none")
    if fit.patterns is not None:
        logged |= PATTERNS
    else:
        never |= dict.fromkeys(PATTERNS, "comes only from the pattern library (model/conditioning=regime_rag); "
                                         "this job's conditioning has none")
    if cfg.validation.get("refit"):
        logged |= REFIT
    else:
        never |= dict.fromkeys(REFIT, "comes only from the final model's fit (validation.refit=true)")
    return RunMetrics(frozenset(logged), never)
