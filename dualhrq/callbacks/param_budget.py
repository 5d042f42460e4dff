"""Stop a run whose model breaks its declared parameter budget before any training."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from dualhrq.models.params import BudgetError, check_budget, count_parameters, format_budget_table


class ParameterBudget(pl.Callback):
    """At fit start: count ``pl_module.net`` per component, log ``params/<component>``,
    show the budget table and, if ``strict``, raise BudgetError on any violation
    of ``pl_module.budget`` (otherwise warn)."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counts = count_parameters(pl_module.net)
        budget = pl_module.budget
        for logger in trainer.loggers:
            logger.log_metrics({f"params/{name}": float(n) for name, n in counts.items()}, step=0)
        table = format_budget_table(counts, budget)
        rank_zero_info(f"Parameter budget:\n{table}")
        violations = check_budget(counts, budget)
        if not violations:
            return
        message = "parameter budget violated: " + "; ".join(violations) + f"\n{table}"
        if self.strict:
            raise BudgetError(message + "\nChange model.net sizes or the budget (model.budget).")
        rank_zero_warn(message)
