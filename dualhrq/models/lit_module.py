"""LightningModule: the HRM network, its trading loss, deep supervision and ACT.

Training uses manual optimisation because one batch gives several optimiser
steps: deep supervision runs ``model.supervision.segments`` segments per
batch, each a full forward pass from the previous segment's detached carry
followed by its own backward pass and step (Wang et al. 2025, sec. 3.2). With
ACT (``model.act``, see ``act.py``) a sample's carry is reset when it halts, and
inference stops a sample at its halting segment.

The trading loss (``objective.py``, weighted in ``model.loss``) has two parts:
the forecast head's Gaussian negative log-likelihood of the standardised
forward return, and the negative mean-variance utility of the batch's
per-date portfolio return after costs on position changes, replayed as the
backtest replays it (a training batch is a run of contiguous dates).

With regime conditioning, the regime classifier's cross-entropy against the
fold's unsupervised regime labels is added with ``model.loss.regime_weight``
(an auxiliary head trained jointly). With ``regime_rag`` each batch's
neighbours are retrieved once, through the fail-open retriever that
``attach_retriever`` sets, and shared by all its segments.

Inference is :meth:`forward`, reached through Lightning's ``predict_step``:
the one decision loop of the job, the replay and serving.

Under mixed precision each segment's forwards, and each decision's segments,
cast the weights to the low precision once (``precision.weight_cast_cache``).

Gradients are clipped in ``on_before_optimizer_step``, which Lightning calls
after unscaling them under any precision (fp16's gradient scaler included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from dualhrq.config import NonNegative, build, check_value, invalid, located, positive_int
from dualhrq.errors import ConfigError
from dualhrq.models.act import ACTConfig, continue_target, halt, is_correct, q_loss
from dualhrq.models.conditioning import PatternBatch, conditioning_group
from dualhrq.models.deq import RecursionConfig
from dualhrq.models.hrm import LevelSize
from dualhrq.models.network import NetOutput, check_norm
from dualhrq.models.objective import TradingObjective, trading_loss
from dualhrq.models.precision import weight_cast_cache
from dualhrq.patterns.retrieval import PatternRetriever


class HRMLitModule(L.LightningModule):
    """Trains a DualHRQ network (HRM or transformer) on one CV fold.

    ``budget`` is the model's declared parameter budget; ``supervision`` is
    ``{segments}``; ``act`` is :class:`ACTConfig`'s mapping; ``loss`` is
    :class:`TradingObjective`'s; ``grad_clip`` the gradient-norm cap applied
    before every segment's step; ``scheduler`` a partial taking the optimiser and
    ``total_steps``; ``conditioning`` is the ``model/conditioning`` group, whose
    ``module`` the network builds.
    """

    def __init__(
        self,
        net: Callable[..., nn.Module],
        optimizer: Callable[..., torch.optim.Optimizer],
        loss: Mapping[str, Any],
        budget: Mapping[str, Mapping[str, float]],
        n_features: int,
        n_regime_features: int,
        n_symbols: int,
        target_scale: float = 1.0,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        supervision: Mapping[str, int] | None = None,
        act: Mapping[str, Any] | None = None,
        grad_clip: float | None = None,
        conditioning: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # plain containers: checkpoints are read back with weights_only=True, which refuses DictConfig
        loss, budget = _plain(loss), _plain(budget)
        supervision, act = _plain(supervision or {}), _plain(act or {"enabled": False})
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler", "conditioning"])
        self.segments, self.act = training_schedule(getattr(net, "func", net), supervision, act, grad_clip)
        self.objective = TradingObjective.from_config(loss)
        self.sizes = {"n_features": n_features, "n_regime_features": n_regime_features, "n_symbols": n_symbols,
                      "target_scale": target_scale}
        extra = {"q_head": True} if self.act.enabled else {}
        self.net = net(n_features=n_features, n_regime_features=n_regime_features, n_symbols=n_symbols,
                       conditioner=conditioning_group(conditioning).get("module"), **extra)
        self.retriever: PatternRetriever | None = None
        self.budget = budget
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.target_scale = target_scale
        self.grad_clip = grad_clip

    def attach_retriever(self, retriever: PatternRetriever | None) -> None:
        """Set the fold's pattern retriever (``regime_rag``); without one the model conditions on regime only."""
        self.retriever = retriever

    def patterns(self, batch: Mapping[str, Tensor]) -> PatternBatch | None:
        """The batch's point-in-time neighbours, or None (no retrieval here, or it failed open)."""
        if self.retriever is None or "query" not in batch:
            return None
        query = batch["query"]
        found = self.retriever(query.detach().cpu().numpy(), batch["t"].detach().cpu().numpy())
        if found is None:
            return None
        tokens, mask = found
        return PatternBatch(tokens=torch.from_numpy(tokens).to(query.device),
                            mask=torch.from_numpy(mask).to(query.device))

    def forward(self, batch: Mapping[str, Tensor]) -> NetOutput:
        """The decision. Segments run until every sample has halted (ACT) or the segment cap;
        each sample keeps the outputs of its halting segment, and ``steps`` says which."""
        with weight_cast_cache():  # under autocast, every segment reuses one low-precision copy of the weights
            return self._decide(batch)

    def _decide(self, batch: Mapping[str, Tensor]) -> NetOutput:
        x, regime, symbol = batch["x"], batch["regime"], batch["symbol"]
        patterns = self.patterns(batch)
        if not self.net.recurrent:
            out = self.net(x, regime, symbol, patterns=patterns)
            out.steps = torch.ones(len(x), device=x.device)
            return out
        max_steps = self.act.halt_max_steps if self.act.enabled else self.segments
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        steps = torch.zeros(len(x), device=x.device)
        carry, result = None, None
        for step in range(1, max_steps + 1):
            out = self.net(x, regime, symbol, carry, patterns=patterns)
            if result is None:
                result = out
            else:
                keep = done.view(-1, 1)
                result.signal = torch.where(done, result.signal, out.signal)
                result.forecast = torch.where(keep, result.forecast, out.forecast)
                if out.q is not None:
                    result.q = torch.where(keep, result.q, out.q)
                result.stats = out.stats
            steps = torch.where(done, steps, float(step))
            if self.act.enabled:
                halted, _ = halt(out.q, torch.full_like(steps, step), self.act, training=False)
                done |= halted
            if done.all():
                break
            carry = out.carry
        result.carry, result.steps = None, steps
        return result

    def loss_terms(self, out: NetOutput, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The trading loss of ``out`` on ``batch`` (``target_z``, ``next_return``, ``symbol``, ``date``)."""
        return trading_loss(out.signal, out.forecast, batch, self.objective, self.target_scale)

    def regime_terms(self, out: NetOutput, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Cross-entropy and accuracy of the regime classifier against the fold's labels (empty without)."""
        if out.regime_logits is None or "regime_label" not in batch:
            return {}
        label = batch["regime_label"]
        return {"regime_ce": F.cross_entropy(out.regime_logits.float(), label),
                "regime_accuracy": (out.regime_logits.argmax(dim=1) == label).float().mean()}

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        """Deep supervision: one optimiser step per segment, carry detached between segments."""
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        x, regime, symbol, target = batch["x"], batch["regime"], batch["symbol"], batch["target_z"]
        n = len(target)
        halted = torch.ones(n, dtype=torch.bool, device=x.device)  # every sample starts from the initial state
        steps = torch.zeros(n, dtype=torch.long, device=x.device)
        carry, halt_steps = None, []
        patterns = self.patterns(batch)
        for _ in range(self.segments):
            with weight_cast_cache():  # the segment's forwards share one cast of each weight; its step changes them
                if self.net.recurrent:
                    carry = self.net.reset_carry(carry, halted, x.shape[1])
                steps = torch.where(halted, 0, steps) + 1
                out = self.net(x, regime, symbol, carry, patterns=patterns)
                terms = self.loss_terms(out, batch)
                terms.update(self.regime_terms(out, batch))
                loss = terms["loss"]
                if "regime_ce" in terms:
                    loss = loss + self.objective.regime_weight * terms["regime_ce"]
                if self.act.enabled:
                    halted, is_last = halt(out.q, steps, self.act, training=True)
                    with torch.no_grad():
                        next_q = self.net(x, regime, symbol, out.carry, patterns=patterns).q
                    correct = is_correct(out.signal.detach(), out.forecast[:, 0].detach(), target, self.act)
                    terms["q_loss"] = q_loss(out.q, correct, continue_target(next_q, is_last))
                    terms["q_accuracy"] = ((out.q[:, 0] > 0) == (correct > 0.5)).float().mean()
                    loss = loss + self.act.loss_weight * terms["q_loss"]
                else:
                    halted = steps >= self.segments
            halt_steps.append(steps[halted])
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            carry = out.carry
        if out.stats is not None:
            terms["solver_iterations"] = float(out.stats.iterations)
            terms["solver_residual"] = out.stats.residual
        stopped = torch.cat(halt_steps)
        if len(stopped):
            terms["steps"] = stopped.float().mean()
        if self.retriever is not None:
            terms["retrieval_ok"] = float(patterns is not None)
        terms["samples_per_step"] = n / self.segments  # distinct samples behind each optimiser step
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=False, batch_size=n)
        self.log("loss", terms["loss"], prog_bar=True, logger=False)
        return loss.detach()

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        out = self(batch)
        terms = self.loss_terms(out, batch)
        terms.update(self.regime_terms(out, batch))
        terms["steps"] = out.steps.mean()
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, prog_bar=False,
                      batch_size=len(batch["target_z"]), sync_dist=True)

    def predict_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """The decision of every sample: ``signal``, ``forecast`` (mean, log-variance) and ACT ``steps``."""
        out = self(batch)
        return {"signal": out.signal, "forecast": out.forecast, "steps": out.steps}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Clip the (already unscaled) gradients to ``grad_clip``."""
        if self.grad_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=self.optimizer_steps())
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def optimizer_steps(self) -> int:
        """Optimiser steps of the whole fit: ``trainer.max_steps`` (which counts them), else one per segment of
        every batch of every epoch."""
        if self.trainer.max_steps > 0:
            return self.trainer.max_steps
        return max(1, int(self.trainer.estimated_stepping_batches) * self.segments)


def training_schedule(net_cls: type, supervision: Mapping[str, int], act: Mapping[str, Any],
                      grad_clip: float | None) -> tuple[int, ACTConfig]:
    """Validated (segments, ACT config) for a net class; refuses what the net cannot do."""
    act_cfg = ACTConfig.from_config(act)
    if set(supervision) - {"segments"}:
        raise ConfigError(f"supervision takes only 'segments', got {sorted(supervision)}.", field="supervision")
    segments = positive_int(supervision.get("segments", 1), "supervision.segments")
    if grad_clip is not None and not grad_clip > 0:
        raise invalid("grad_clip", grad_clip, "positive or null")
    if not getattr(net_cls, "recurrent", False) and (act_cfg.enabled or segments > 1):
        raise ConfigError("act.enabled and supervision.segments > 1 need a recurrent net (an HRM); this one has "
                          "no carry. Fix: set model.act.enabled=false model.supervision.segments=1.",
                          field="act.enabled")
    if act_cfg.enabled and segments != act_cfg.halt_max_steps:
        raise ConfigError(f"supervision.segments={segments} differs from act.halt_max_steps="
                          f"{act_cfg.halt_max_steps}: training would never reach (or would pass) the segment cap "
                          "that inference runs to. Fix: set both to the same number.", field="supervision.segments")
    return segments, act_cfg


def check_model_config(model: DictConfig) -> None:
    """Pre-flight check of ``cfg.model`` with no data and no weights: the conditioning group, the training
    schedule, the recursion, the level sizes and the norm, with the same messages the model itself would give."""
    net_cls = get_class(model.net._target_)
    with located(model):
        training_schedule(net_cls, _plain(model.get("supervision") or {}),
                          _plain(model.get("act") or {"enabled": False}), model.get("grad_clip"))
        if model.net.get("recursion") is not None:
            RecursionConfig.from_config(_plain(model.net.recursion))
        for level in ("h", "l", "trunk"):
            if model.net.get(level) is not None:
                LevelSize.from_config(_plain(model.net[level]), f"net.{level}")
        check_norm(model.net.get("norm", "post"))
        for name in ("h_cycles", "l_cycles", "cond_hidden", "head_hidden"):
            if name in model.net:
                positive_int(model.net[name], f"net.{name}")
        group = conditioning_group(model.get("conditioning"))
        check_value("conditioning.regime_loss_weight", group.get("regime_loss_weight", 0.0), NonNegative)
        TradingObjective.from_config(_plain(model.get("loss") or {}))
        if model.get("scheduler") is not None:
            with located("scheduler"):
                build(model.scheduler)(optimizer=torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0),
                                       total_steps=1)
    if group.get("module") is not None:  # a small copy of the conditioner checks its own settings
        with located(model):
            build(group.module)(n_regime_features=1, n_symbols=1, hidden=4, n_layers=1, d_model=4)


def _plain(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return OmegaConf.to_container(mapping, resolve=True) if isinstance(mapping, DictConfig) else dict(mapping)
