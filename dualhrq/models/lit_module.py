"""LightningModule: the HRM network, its trading loss, deep supervision and ACT.

Training is deep supervision with a carry-over batch (Wang et al. 2025,
sec. 3.2; ``carry.py``): every training step runs one segment, a full forward
pass from the previous segment's detached carry, over ``model.supervision.slots``
blocks of samples, followed by one backward pass and optimiser step (manual
optimisation, since the step and the carry are the model's own). A block runs
until ACT (``model.act``, see ``act.py``) halts it or it reaches
``model.supervision.segments``; its slot then takes the next batch's block.
Inference stops each sample at its own halting segment.

The trading loss (``objective.py``, weighted in ``model.loss``) has two parts:
the forecast head's Gaussian negative log-likelihood of the standardised
forward return, and the negative mean-variance utility of the batch's
per-date portfolio return after costs on position changes, replayed as the
backtest replays it (a training batch is a run of contiguous dates).

With regime conditioning, the regime classifier's cross-entropy against the
fold's unsupervised regime labels is added with ``model.loss.regime_weight``
(an auxiliary head trained jointly). With ``regime_rag`` each batch's
block's neighbours are retrieved once when it enters its slot, through the
fail-open retriever that ``attach_retriever`` sets, and shared by all its
segments.

Inference is :meth:`forward`, reached through Lightning's ``predict_step``:
the one decision loop of the job, the replay and serving.

With ``model.supervision.dense`` the network reads every bar of the window and :meth:`loss_terms` takes the
loss at every supervised bar (``dualhrq.models.supervision``); the regime input is then each bar's own
(``regime_seq``), so FiLM is causal per bar. The ACT Q head still judges the window's last bar: halting is
per window.

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
from dualhrq.models.act import ACTConfig, continue_target, halt, halt_blocks, is_correct, q_loss
from dualhrq.models.carry import CarryBatch
from dualhrq.models.conditioning import PatternBatch, conditioning_group
from dualhrq.models.deq import RecursionConfig
from dualhrq.models.hrm import LevelSize
from dualhrq.models.network import NetOutput, check_norm
from dualhrq.models.objective import TradingObjective, supervised_bars, trading_loss
from dualhrq.models.precision import weight_cast_cache
from dualhrq.models.supervision import Prediction, Supervision
from dualhrq.patterns.retrieval import PatternRetriever


class HRMLitModule(L.LightningModule):
    """Trains a DualHRQ network (HRM or transformer) on one CV fold.

    ``budget`` is the model's declared parameter budget; ``supervision`` is
    :class:`Supervision`'s mapping (segments, slots, dense, min_context); ``prediction`` is :class:`Prediction`'s
    (stride); ``act`` is :class:`ACTConfig`'s mapping; ``loss`` is
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
        supervision: Mapping[str, Any] | None = None,
        act: Mapping[str, Any] | None = None,
        grad_clip: float | None = None,
        conditioning: Mapping[str, Any] | None = None,
        prediction: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # plain containers: checkpoints are read back with weights_only=True, which refuses DictConfig
        loss, budget = _plain(loss), _plain(budget)
        supervision, act = _plain(supervision or {}), _plain(act or {"enabled": False})
        prediction = _plain(prediction or {})
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler", "conditioning"])
        self.segments, self.act = training_schedule(getattr(net, "func", net), supervision, act, grad_clip)
        conditioner = conditioning_group(conditioning).get("module")
        self.supervision, self.prediction = dense_schedule(
            getattr(net, "func", net), supervision, prediction,
            None if conditioner is None else getattr(conditioner, "func", conditioner))
        self.carry_batch = CarryBatch(self.supervision.slots)
        self.objective = TradingObjective.from_config(loss)
        self.sizes = {"n_features": n_features, "n_regime_features": n_regime_features, "n_symbols": n_symbols,
                      "target_scale": target_scale}
        extra = {"q_head": True} if self.act.enabled else {}
        if self.supervision.dense:
            extra["dense"] = True
        self.net = net(n_features=n_features, n_regime_features=n_regime_features, n_symbols=n_symbols,
                       conditioner=conditioner, **extra)
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

    def regime_input(self, batch: Mapping[str, Tensor]) -> Tensor:
        """The conditioner's input: the decision bar's regime [B, R], or every bar's [B, T, R] when dense."""
        if not self.supervision.dense:
            return batch["regime"]
        if "regime_seq" not in batch:
            raise KeyError("a densely supervised model needs every bar's regime inputs (batch item 'regime_seq'); "
                           "cut its batches with sequence=True (TransformedSamples.dataset)")
        return batch["regime_seq"]

    def forward(self, batch: Mapping[str, Tensor]) -> NetOutput:
        """The decision. Segments run until every sample has halted (ACT) or the segment cap;
        each sample keeps the outputs of its halting segment, and ``steps`` says which. A dense model's
        outputs at every bar come from that same segment (halting is per window)."""
        with weight_cast_cache():  # under autocast, every segment reuses one low-precision copy of the weights
            return self._decide(batch)

    def _decide(self, batch: Mapping[str, Tensor]) -> NetOutput:
        x, regime, symbol = batch["x"], self.regime_input(batch), batch["symbol"]
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
                if out.dense_signal is not None:
                    result.dense_signal = torch.where(keep, result.dense_signal, out.dense_signal)
                    result.dense_forecast = torch.where(keep[:, :, None], result.dense_forecast, out.dense_forecast)
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
        """The trading loss of ``out`` on ``batch`` (``target_z``, ``next_return``, ``symbol``, ``date``): at the
        decision bar, or, for a dense output on a batch with per-bar labels (``supervised`` and the ``*_seq``
        items of a dense training batch), at every supervised bar (``objective.supervised_bars``)."""
        if out.dense_signal is not None and "supervised" in batch:
            signal, forecast, bars = supervised_bars(out.dense_signal, out.dense_forecast, batch)
            terms = trading_loss(signal, forecast, bars, self.objective, self.target_scale)
            terms["supervised_bars"] = signal.new_tensor(float(len(signal)))
            return terms
        return trading_loss(out.signal, out.forecast, batch, self.objective, self.target_scale)

    def regime_terms(self, out: NetOutput, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Cross-entropy and accuracy of the regime classifier against the fold's labels (empty without)."""
        if out.regime_logits is None or "regime_label" not in batch:
            return {}
        label = batch["regime_label"]
        return {"regime_ce": F.cross_entropy(out.regime_logits.float(), label),
                "regime_accuracy": (out.regime_logits.argmax(dim=1) == label).float().mean()}

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor:
        """One segment over the carried slots and one optimiser step; finished slots take the batch's blocks."""
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        slots = self.carry_batch
        entered = slots.refill(batch, self.patterns)
        data, block, steps = slots.data(), slots.block(), slots.steps()
        x, regime, symbol, target = data["x"], self.regime_input(data), data["symbol"], data["target_z"]
        carry = slots.carry(lambda n: self.net.initial_carry(n, x.shape[1])) if self.net.recurrent else None
        patterns = slots.patterns()
        with weight_cast_cache():  # the segment's forwards share one cast of each weight; its step changes them
            out = self.net(x, regime, symbol, carry, patterns=patterns)
            terms = self.loss_terms(out, data)
            terms.update(self.regime_terms(out, data))
            loss = terms["loss"]
            if "regime_ce" in terms:
                loss = loss + self.objective.regime_weight * terms["regime_ce"]
            if self.act.enabled:
                done = halt_blocks(out.q, block, steps, self.act)
                with torch.no_grad():
                    next_q = self.net(x, regime, symbol, out.carry, patterns=patterns).q
                correct = is_correct(out.signal.detach(), out.forecast[:, 0].detach(), target, self.act)
                is_last = (steps >= self.act.halt_max_steps)[block]
                terms["q_loss"] = q_loss(out.q, correct, continue_target(next_q, is_last))
                terms["q_accuracy"] = ((out.q[:, 0] > 0) == (correct > 0.5)).float().mean()
                loss = loss + self.act.loss_weight * terms["q_loss"]
            else:
                done = steps >= self.segments
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        slots.advance(out.carry, done)
        if out.stats is not None:
            terms["solver_iterations"] = float(out.stats.iterations)
            terms["solver_residual"] = out.stats.residual
        if done.any():
            terms["steps"] = steps[block][done[block]].float().mean()  # segments of the samples that finished
        if self.retriever is not None:
            terms["retrieval_ok"] = float(patterns is not None)
        terms["new_samples"] = float(entered)
        terms["samples_per_step"] = slots.entered / max(self.trainer.global_step, 1)  # distinct, over the fit
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=False, batch_size=len(target))
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
        """The decision of every sample: ``signal``, ``forecast`` (mean, log-variance) and ACT ``steps``; a dense
        model adds every bar's (``dense_signal``, ``dense_forecast``), which strided prediction reads."""
        out = self(batch)
        result = {"signal": out.signal, "forecast": out.forecast, "steps": out.steps}
        if out.dense_signal is not None:
            result |= {"dense_signal": out.dense_signal, "dense_forecast": out.dense_forecast}
        return result

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The carried slots go with the weights, so a resumed fit continues the same blocks."""
        checkpoint["deep_supervision"] = self.carry_batch.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "deep_supervision" in checkpoint:
            self.carry_batch.load_state_dict(checkpoint["deep_supervision"])

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
        """Optimiser steps of the whole fit: one per training batch (``trainer.max_steps`` caps them)."""
        return max(1, int(self.trainer.estimated_stepping_batches))


def training_schedule(net_cls: type, supervision: Mapping[str, Any], act: Mapping[str, Any],
                      grad_clip: float | None) -> tuple[int, ACTConfig]:
    """Validated (segments, ACT config) for a net class; refuses what the net cannot do."""
    act_cfg = ACTConfig.from_config(act)
    segments = Supervision.from_config(supervision).segments
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


def dense_schedule(net_cls: type, supervision: Mapping[str, Any], prediction: Mapping[str, Any],
                   conditioner_cls: type | None) -> tuple[Supervision, Prediction]:
    """Validated (supervision, prediction) settings; refuses dense supervision where a bar could see later
    information or the net has no per-bar outputs, and a stride without dense training."""
    sup, pred = Supervision.from_config(supervision), Prediction.from_config(prediction)
    if sup.dense and not getattr(net_cls, "dense_capable", False):
        raise ConfigError(f"supervision.dense=true needs a net with outputs and FiLM at every bar (the HRM, "
                          f"DualHRQNet); {net_cls.__name__} decides on the last bar only. Fix: set "
                          "model.supervision.dense=false, or use model=hrm_tiny / hrm_27m.", field="supervision.dense")
    if sup.dense and conditioner_cls is not None and not getattr(conditioner_cls, "per_bar", False):
        raise ConfigError(f"supervision.dense=true with {conditioner_cls.__name__}: its context is found once per "
                          "decision (pattern retrieval at the decision bar), not point-in-time at every bar, so "
                          "earlier bars would be conditioned on later information. Fix: use model/conditioning=regime "
                          "(or none, puzzle_id), or set model.supervision.dense=false.", field="supervision.dense")
    pred.check(sup)
    return sup, pred


def check_model_config(model: DictConfig, seq_len: int | None = None) -> None:
    """Pre-flight check of ``cfg.model`` with no data and no weights: the conditioning group, the training
    schedule, the recursion, the level sizes and the norm, with the same messages the model itself would give;
    with ``seq_len`` (``data.seq_len``) also dense supervision's window and the prediction stride against it."""
    net_cls = get_class(model.net._target_)
    group = conditioning_group(model.get("conditioning"))
    with located(model):
        supervision = _plain(model.get("supervision") or {})
        training_schedule(net_cls, supervision, _plain(model.get("act") or {"enabled": False}), model.get("grad_clip"))
        module = group.get("module")
        sup, pred = dense_schedule(net_cls, supervision, _plain(model.get("prediction") or {}),
                                   None if module is None else get_class(module._target_))
        if seq_len is not None:
            sup.bars(seq_len)
            pred.check(sup, seq_len)
        if model.net.get("recursion") is not None:
            RecursionConfig.from_config(_plain(model.net.recursion))
        for level in ("h", "l", "trunk"):
            if model.net.get(level) is not None:
                LevelSize.from_config(_plain(model.net[level]), f"net.{level}")
        check_norm(model.net.get("norm", "post"))
        for name in ("h_cycles", "l_cycles", "cond_hidden", "head_hidden"):
            if name in model.net:
                positive_int(model.net[name], f"net.{name}")
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
