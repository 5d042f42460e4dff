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


def make_module(segments: int = 3, act: dict | None = None, seed: int = 0) -> HRMLitModule:
    torch.manual_seed(seed)
    sizes = model_sizes("hrm_tiny")
    return HRMLitModule(net=partial(DualHRQNet, **sizes["net"]), conditioning={"module": conditioner("regime")},
                        optimizer=partial(torch.optim.AdamW, lr=1e-2), loss=LOSS, budget=sizes["budget"],
                        n_features=N_FEATURES, n_regime_features=N_REGIME, n_symbols=N_SYMBOLS,
                        supervision={"segments": segments}, act=act or {"enabled": False}, grad_clip=1.0)


def loader(n: int = 8, b: int = 4) -> DataLoader:
    x, regime, symbol = batch(b=n)
    target = torch.randn(n, generator=torch.Generator().manual_seed(5))
    rows = [{"x": x[i], "regime": regime[i], "symbol": symbol[i], "target_z": target[i],
             "next_return": 0.01 * target[i], "date": torch.tensor(i)} for i in range(n)]
    return DataLoader(rows, batch_size=b)


def fit(module: HRMLitModule, batches: int) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=batches, accelerator="cpu", logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         deterministic=True)
    trainer.fit(module, train_dataloaders=loader())
    return trainer


def test_one_optimiser_step_per_segment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = make_module(segments=3)
    before = [p.detach().clone() for p in module.parameters()]
    trainer = fit(module, batches=2)
    assert trainer.global_step == 6
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_carry_is_kept_across_segments_and_reset_per_sample_on_halt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = make_module(segments=3, act={"enabled": True, "halt_max_steps": 3})
    calls = []
    forward = module.net.forward

    def recording(x, regime, symbol, carry=None, patterns=None):
        out = forward(x, regime, symbol, carry, patterns=patterns)
        calls.append((carry, out.carry))
        return out

    monkeypatch.setattr(module.net, "forward", recording)
    patterns = iter([[True, False, False, False], [False, True, False, False], [True, True, True, True]])

    def scripted_halt(q, steps, cfg, *, training, generator=None):
        halted = torch.tensor(next(patterns))
        return halted, steps >= cfg.halt_max_steps

    monkeypatch.setattr(lit_module, "halt", scripted_halt)
    fit(module, batches=1)
    # per segment: the training forward, then the no-grad forward for the Q target
    (c1, o1), (c2, o2), (c3, _) = calls[0], calls[2], calls[4]
    init = module.net.hrm.initial_carry(4, c1.z_L.shape[1])
    assert torch.equal(c1.z_L, init.z_L) and torch.equal(c1.z_H, init.z_H)
    assert torch.equal(c2.z_L[0], init.z_L[0]) and torch.equal(c2.z_H[0], init.z_H[0])  # halted: reset
    assert torch.equal(c2.z_L[1:], o1.z_L[1:]) and torch.equal(c2.z_H[1:], o1.z_H[1:])  # kept
    assert torch.equal(c3.z_L[1], init.z_L[1])
    assert torch.equal(c3.z_L[[0, 2, 3]], o2.z_L[[0, 2, 3]])
    # the Q target is bootstrapped from the segment's own new carry
    assert calls[1][0] is o1
    assert not o1.z_L.requires_grad


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


def _bf16_fit(monkeypatch, cache) -> list[torch.Tensor]:
    monkeypatch.setattr(lit_module, "weight_cast_cache", cache)
    module = make_module(segments=3, act={"enabled": True, "halt_max_steps": 3})
    trainer = pl.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, precision="bf16-mixed",
                         deterministic=True)
    trainer.fit(module, train_dataloaders=loader())
    return [p.detach().clone() for p in module.parameters()]


def test_bf16_weight_casts_shared_within_a_segment_never_outlive_its_optimiser_step(tmp_path, monkeypatch):
    """Two batches of three segments under bf16-mixed, with one cast of each weight per segment and with
    Lightning's own per-call casts: the same bf16 copies enter the same products, so every parameter ends
    identical. A cast kept past an optimiser step would feed later segments the old weights and differ."""
    monkeypatch.chdir(tmp_path)
    cached = _bf16_fit(monkeypatch, lit_module.weight_cast_cache)
    plain = _bf16_fit(monkeypatch, contextlib.nullcontext)
    assert all(torch.equal(a, b) for a, b in zip(cached, plain, strict=True))

    def stale():  # the cache left on across the steps: what the test must tell apart
        torch.set_autocast_cache_enabled(True)
        return contextlib.nullcontext()

    assert not all(torch.equal(a, b) for a, b in zip(_bf16_fit(monkeypatch, stale), plain, strict=True))
