"""Deep supervision (one optimiser step per segment), carry reset on halt and ACT inference."""

import contextlib
from functools import partial

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader

from dualhrq.config import model_sizes
from dualhrq.errors import ConfigError
from dualhrq.models import lit_module
from dualhrq.models.lit_module import HRMLitModule
from dualhrq.models.network import DualHRQNet
from dualhrq.models.schedule import cosine_with_warmup
from dualhrq.models.transformer import TransformerNet

from .conftest import N_FEATURES, N_REGIME, N_SYMBOLS, batch, conditioner

LOSS = {"forecast_weight": 1.0, "utility_weight": 0.5, "cost_bps": 1.0}


def make_module(segments: int = 3, act: dict | None = None, seed: int = 0, slots: int = 1) -> HRMLitModule:
    torch.manual_seed(seed)
    sizes = model_sizes("hrm_tiny")
    return HRMLitModule(net=partial(DualHRQNet, **sizes["net"]), conditioning={"module": conditioner("regime")},
                        optimizer=partial(torch.optim.AdamW, lr=1e-2), loss=LOSS, budget=sizes["budget"],
                        n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS,
                        supervision={"segments": segments, "slots": slots}, act=act or {"enabled": False},
                        grad_clip=1.0)


def loader(n: int = 8, b: int = 4) -> DataLoader:
    """``n`` samples, one a date (date ``i`` for sample ``i``), in order: a batch of 4 is 2 blocks of 2 dates."""
    x, regime, symbol = batch(b=n)
    target = torch.randn(n, generator=torch.Generator().manual_seed(5))
    rows = [{"x": x[i], "regime": regime[i], "symbol": symbol[i], "target_z": target[i],
             "next_return": 0.01 * target[i], "date": torch.tensor(i)} for i in range(n)]
    return DataLoader(rows, batch_size=b)


def fit(module: HRMLitModule, batches: int, n: int = 8, **trainer) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=batches, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         deterministic=True, **trainer)
    trainer.fit(module, train_dataloaders=loader(n=n))
    return trainer


def record_segments(module: HRMLitModule, monkeypatch) -> list[tuple[list[int], object, object]]:
    """Per training forward: the dates it saw, its carry in and its carry out."""
    calls = []
    forward = module.net.forward

    def recording(x, regime, symbol, carry=None, patterns=None):
        out = forward(x, regime, symbol, carry, patterns=patterns)
        calls.append((x, carry, out.carry))
        return out

    monkeypatch.setattr(module.net, "forward", recording)
    return calls


def test_each_batch_is_one_segment_and_one_step_and_a_block_runs_all_its_segments(tmp_path, monkeypatch):
    """Without ACT a block is supervised for `segments` consecutive steps from the initial state, then its slot
    takes the next batch's block: batches met while it runs are skipped, none is cut short."""
    monkeypatch.chdir(tmp_path)
    module = make_module(segments=3)
    before = [p.detach().clone() for p in module.parameters()]
    x_all = loader(n=24).dataset
    calls = record_segments(module, monkeypatch)
    trainer = fit(module, batches=6, n=24)
    assert trainer.global_step == 6
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))
    first_x = [next(i for i, row in enumerate(x_all) if torch.equal(row["x"], x[0])) for x, _, _ in calls]
    assert first_x == [0, 0, 0, 12, 12, 12]  # batches 0 and 3 enter; 1, 2, 4 and 5 are skipped
    init = module.net.hrm.initial_carry(4, calls[0][0].shape[1])
    for step, (_, carry_in, _) in enumerate(calls):
        if step % 3 == 0:
            assert torch.equal(carry_in.z_L, init.z_L) and torch.equal(carry_in.z_H, init.z_H)
        else:
            assert torch.equal(carry_in.z_L, calls[step - 1][2].z_L)
    assert module.carry_batch.entered == 8  # two blocks of 4 behind 6 optimiser steps


def test_a_halted_slot_takes_the_next_batchs_block_and_the_others_carry_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = make_module(segments=3, act={"enabled": True, "halt_max_steps": 3}, slots=2)
    calls = []
    forward = module.net.forward

    def recording(x, regime, symbol, carry=None, patterns=None):
        out = forward(x, regime, symbol, carry, patterns=patterns)
        calls.append((regime[:, 0].clone(), carry, out.carry))
        return out

    monkeypatch.setattr(module.net, "forward", recording)
    decisions = iter([[True, False], [False, True], [True, True]])
    seen_steps = []

    def scripted(q, block, steps, cfg):
        seen_steps.append(steps.tolist())
        return torch.tensor(next(decisions))

    monkeypatch.setattr(lit_module, "halt_blocks", scripted)
    fit(module, batches=3, n=12)
    regime = loader(n=12).dataset
    tag = [float(row["regime"][0]) for row in regime]  # identifies each sample
    # per step: the training forward, then the no-grad forward for the Q target
    (r1, c1, o1), (r2, c2, o2), (r3, c3, _) = calls[0], calls[2], calls[4]
    assert r1.tolist() == tag[0:4]
    assert r2.tolist() == tag[4:6] + tag[2:4]  # slot 0 halted: batch 1's first block; slot 1 carries on
    assert r3.tolist() == tag[4:6] + tag[10:12]  # then slot 1 halted: batch 2's second block
    assert seen_steps == [[1, 1], [1, 2], [2, 1]]
    init = module.net.hrm.initial_carry(2, c1.z_L.shape[1])
    assert torch.equal(c1.z_L[:2], init.z_L) and torch.equal(c2.z_L[:2], init.z_L)  # fresh: the initial state
    assert torch.equal(c2.z_L[2:], o1.z_L[2:]) and torch.equal(c2.z_H[2:], o1.z_H[2:])  # kept
    assert torch.equal(c3.z_L[:2], o2.z_L[:2]) and torch.equal(c3.z_L[2:], init.z_L)
    assert calls[1][1] is o1  # the Q target is bootstrapped from the segment's own new carry
    assert not o1.z_L.requires_grad
    assert module.carry_batch.entered == 8


def test_a_resumed_fit_continues_the_carried_blocks(tmp_path, monkeypatch):
    """A checkpoint taken while blocks are part-way through their segments resumes to the same weights."""
    monkeypatch.chdir(tmp_path)
    act = {"enabled": True, "halt_max_steps": 3, "exploration_prob": 0.5}

    def run(steps: int, resume: str | None = None) -> HRMLitModule:
        pl.seed_everything(3)
        module = make_module(segments=3, act=act, slots=2, seed=3)
        ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0,
                                            every_n_train_steps=2)
        trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, callbacks=[ckpt],
                             enable_progress_bar=False, enable_model_summary=False, deterministic=True)
        trainer.fit(module, train_dataloaders=loader(n=8), ckpt_path=resume, weights_only=True)
        return module

    whole = run(4)
    run(2)
    resumed = run(4, resume=str(tmp_path / "ckpt" / "last.ckpt"))
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.carry_batch.entered == whole.carry_batch.entered


def test_inference_keeps_each_sample_at_its_halting_segment(monkeypatch):
    module = make_module(act={"enabled": True, "halt_max_steps": 3}).eval()
    x, regime, symbol = batch(b=2)
    net = module.net
    with torch.no_grad():
        seg1 = net(x, regime, symbol)
        seg2 = net(x, regime, symbol, seg1.carry)
        seg3 = net(x, regime, symbol, seg2.carry)
        # untrained: Q logits tie at the -5 bias, so no sample halts before the cap
        out = module({"x": x, "regime": regime, "symbol": symbol})
        assert out.steps.tolist() == [3.0, 3.0]
        torch.testing.assert_close(out.forecast, seg3.forecast)

        monkeypatch.setattr(lit_module, "halt", lambda q, steps, cfg, training: (
            torch.tensor([True, False]) if steps[0] == 1 else torch.tensor([True, True]), None))
        out = module({"x": x, "regime": regime, "symbol": symbol})
    assert out.steps.tolist() == [1.0, 2.0]
    torch.testing.assert_close(out.signal, torch.stack([seg1.signal[0], seg2.signal[1]]))
    torch.testing.assert_close(out.forecast, torch.stack([seg1.forecast[0], seg2.forecast[1]]))


def test_halting_q_head_stops_inference_early():
    module = make_module(segments=4, act={"enabled": True, "halt_max_steps": 4}).eval()
    with torch.no_grad():
        module.net.heads.q.bias.copy_(torch.tensor([5.0, -5.0]))
        x, regime, symbol = batch(b=3)
        out = module({"x": x, "regime": regime, "symbol": symbol})
        assert out.steps.tolist() == [1.0, 1.0, 1.0]
        torch.testing.assert_close(out.signal, module.net(x, regime, symbol).signal)
    module.act = module.act.__class__(halt_max_steps=4, eval_mode="max_steps")
    with torch.no_grad():
        assert module({"x": x, "regime": regime, "symbol": symbol}).steps.tolist() == [4.0, 4.0, 4.0]


def test_same_seed_same_weights_with_act_exploration(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    act = {"enabled": True, "halt_max_steps": 3, "exploration_prob": 0.5}
    params = []
    for seed in (1, 1, 2):
        pl.seed_everything(seed)
        module = make_module(segments=3, act=act, seed=seed)
        fit(module, batches=2)
        params.append(torch.cat([p.detach().flatten() for p in module.parameters()]))
    assert torch.equal(params[0], params[1])
    assert not torch.equal(params[0], params[2])


def test_a_net_without_carry_refuses_deep_supervision_and_act():
    sizes = model_sizes("transformer_27m")
    net = partial(TransformerNet, trunk={"dim": 32, "layers": 2, "heads": 2, "ffn_hidden": 64}, cond_hidden=8)
    for kwargs in ({"supervision": {"segments": 2}}, {"act": {"enabled": True}}):
        with pytest.raises(ConfigError, match="model.act.enabled=false model.supervision.segments=1"):
            HRMLitModule(net=net, conditioning={"module": None}, optimizer=partial(torch.optim.AdamW), loss=LOSS,
                         budget=sizes["budget"], n_features=N_FEATURES, n_regime_features=N_REGIME,
                         n_symbols=N_SYMBOLS, **kwargs)


@pytest.mark.parametrize("segments", [2, 5])
def test_segments_must_equal_the_act_segment_cap(segments):
    with pytest.raises(ConfigError, match=f"supervision.segments={segments} differs from act.halt_max_steps=4") as err:
        make_module(segments=segments, act={"enabled": True, "halt_max_steps": 4})
    assert err.value.field == "supervision.segments"
    make_module(segments=segments, act={"enabled": False})  # without ACT the segment count is free


def test_the_schedule_spans_the_fits_optimiser_steps(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = make_module(segments=3)
    module.scheduler_factory = partial(cosine_with_warmup, warmup_fraction=0.0, min_lr_ratio=0.25)
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=loader())
    assert trainer.global_step == 6  # two batches of three segments
    assert module.optimizers().param_groups[0]["lr"] == pytest.approx(1e-2 * 0.25)  # decayed to the floor


def test_gradients_are_clipped_after_fp16_unscaling(tmp_path, monkeypatch):
    """Under a gradient scaler the clip must act on the true gradients: their norm after clipping is the cap,
    not the cap divided by the loss scale."""
    monkeypatch.chdir(tmp_path)
    module = make_module(segments=2)
    module.grad_clip = 1e-3
    norms, scales = [], []
    clip = module.on_before_optimizer_step

    def recording(optimizer):
        clip(optimizer)
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        scales.append(scaler.get_scale())

    monkeypatch.setattr(module, "on_before_optimizer_step", recording)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    trainer.fit(module, train_dataloaders=loader())
    assert len(norms) == 2 and min(scales) > 1
    np.testing.assert_allclose(norms, 1e-3, rtol=1e-3)


def _bf16_fit(monkeypatch, cache) -> tuple[list[torch.Tensor], int]:
    """The parameters after six bf16-mixed steps, and the dtype casts the fit ran."""
    monkeypatch.setattr(lit_module, "weight_cast_cache", cache)
    module = make_module(segments=3, act={"enabled": True, "halt_max_steps": 3})
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, precision="bf16-mixed",
                         deterministic=True)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        trainer.fit(module, train_dataloaders=loader(n=24))
    casts = sum(e.count for e in prof.key_averages() if e.key == "aten::_to_copy")
    return [p.detach().clone() for p in module.parameters()], casts


def test_bf16_weights_are_cast_once_a_step_with_the_numbers_of_per_call_casts(tmp_path, monkeypatch):
    """Six bf16-mixed steps with one cast of each weight per step (shared by the step's forwards and every
    recurrent call of a layer) and with Lightning's own per-call casts: the same bf16 copies enter the same
    products, so every parameter ends identical, with fewer casts. Lightning leaves autocast at the end of
    each training step, which empties the cache, so no cast outlives the optimiser step after it."""
    monkeypatch.chdir(tmp_path)
    cached, cached_casts = _bf16_fit(monkeypatch, lit_module.weight_cast_cache)
    plain, plain_casts = _bf16_fit(monkeypatch, contextlib.nullcontext)
    assert all(torch.equal(a, b) for a, b in zip(cached, plain, strict=True))
    assert cached_casts < plain_casts  # measured 3,878 against 4,472 (activations are cast either way)
