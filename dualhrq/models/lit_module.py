"""LightningModule: the HRM network, its trading loss and its optimiser.

The loss has two parts, weighted in ``model.loss``:

* forecast: Gaussian negative log-likelihood of the standardised forward
  return under the forecast head's (mean, log-variance);
* utility: the batch Sharpe ratio of the signal's P&L after a cost charged on
  the size of each position, negated so that lower is better.

Targets arrive standardised by the fold's training standard deviation, so the
cost is converted to the same units with ``target_scale``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from dualhrq.models.network import DualHRQNet, NetOutput


def trading_loss(out: NetOutput, target_z: Tensor, *, forecast_weight: float, utility_weight: float,
                 cost_z: float) -> dict[str, Tensor]:
    """Forecast NLL and negative after-cost Sharpe utility of one batch."""
    mean, logvar = out.forecast[:, 0], out.forecast[:, 1].clamp(-10.0, 10.0)
    nll = 0.5 * (logvar + (target_z - mean) ** 2 * torch.exp(-logvar)).mean()
    pnl = out.signal * target_z - cost_z * out.signal.abs()
    utility = pnl.mean() / (pnl.std(unbiased=False) + 1e-6)
    loss = forecast_weight * nll - utility_weight * utility
    return {"loss": loss, "nll": nll, "utility": utility}


class HRMLitModule(L.LightningModule):
    """Trains :class:`DualHRQNet` on one CV fold; ``budget`` is the model's declared parameter budget."""

    def __init__(
        self,
        net: Callable[..., DualHRQNet],
        conditioning: str,
        optimizer: Callable[..., torch.optim.Optimizer],
        loss: Mapping[str, float],
        budget: Mapping[str, Mapping[str, float]],
        n_features: int,
        n_regime_features: int,
        n_symbols: int,
        target_scale: float = 1.0,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
    ) -> None:
        super().__init__()
        # plain containers: checkpoints are read back with weights_only=True, which refuses DictConfig
        loss, budget = _plain(loss), _plain(budget)
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net(n_features=n_features, n_regime_features=n_regime_features,
                       n_symbols=n_symbols, conditioning=conditioning)
        self.budget = budget
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.loss_weights = loss
        self.target_scale = target_scale

    def forward(self, batch: Mapping[str, Tensor]) -> NetOutput:
        return self.net(batch["x"], batch["regime"], batch["symbol"])

    def loss_terms(self, out: NetOutput, target_z: Tensor) -> dict[str, Tensor]:
        cost_z = self.loss_weights["cost_bps"] * 1e-4 / self.target_scale
        return trading_loss(out, target_z, forecast_weight=self.loss_weights["forecast_weight"],
                            utility_weight=self.loss_weights["utility_weight"], cost_z=cost_z)

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        terms = self.loss_terms(self(batch), batch["target_z"])
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=False,
                      batch_size=len(batch["target_z"]))
        self.log("loss", terms["loss"], prog_bar=True, logger=False)
        return terms["loss"]

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        terms = self.loss_terms(self(batch), batch["target_z"])
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, prog_bar=False,
                      batch_size=len(batch["target_z"]), sync_dist=True)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer=optimizer), "interval": "step"}}


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return OmegaConf.to_container(mapping, resolve=True) if isinstance(mapping, DictConfig) else dict(mapping)
