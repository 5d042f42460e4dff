"""trainer.precision: auto picks bf16 only on hardware that multiplies bf16 natively; bad values are refused;
under bf16 autocast weights are cast once per span of constant weights and attention runs in fp32 on the CPU."""

from __future__ import annotations

import contextlib
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dualhrq.errors import ConfigError
from dualhrq.models.precision import cpu_flags, resolve_precision, weight_cast_cache


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx512f", "avx512_bf16"}, "bf16-mixed"),
    ({"amx_bf16", "amx_tile"}, "bf16-mixed"),
    ({"avx512f", "avx2"}, "32-true"),  # AVX-512 without its bf16 extension emulates bf16: slower than fp32
    (set(), "32-true"),
])
def test_auto_follows_the_cpu_flags(flags, expected):
    assert resolve_precision("auto", "cpu", flags=frozenset(flags)) == expected


def test_auto_on_a_gpu_follows_its_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_precision("auto", "gpu", cuda_bf16=True, flags=frozenset()) == "bf16-mixed"
    assert resolve_precision("auto", "gpu", cuda_bf16=False, flags=frozenset({"avx512_bf16"})) == "32-true"
    assert resolve_precision("auto", "cpu", cuda_bf16=True, flags=frozenset()) == "32-true"  # GPU present, unused


@pytest.mark.parametrize("value", ["32-true", "bf16-mixed"])
def test_a_named_precision_is_kept_whatever_the_hardware(value):
    assert resolve_precision(value, "cpu", flags=frozenset()) == value
    assert resolve_precision(value, "cpu", flags=frozenset({"avx512_bf16"})) == value


def test_cpu_flags_are_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx512f avx512_bf16\nbugs\t\t: none\n")
    assert cpu_flags(info) == {"fpu", "sse2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_bad_precisions_are_refused_with_the_field_and_the_choices(monkeypatch):
    with pytest.raises(ConfigError, match=r"^trainer\.precision must be one of \['auto', '32-true', 'bf16-mixed', "
                                          r"'16-mixed'\], got 'fp8'"):
        resolve_precision("fp8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=r"^trainer\.precision=16-mixed needs a CUDA device"):
        resolve_precision("16-mixed", "auto")


def test_the_job_refuses_a_bad_precision_before_reading_data(tmp_path):
    from dualhrq.training.preflight import check_training_config

    from ..e2e.conftest import compose_tiny

    with pytest.raises(ConfigError, match=r"^trainer\.precision must be one of"):
        check_training_config(compose_tiny(tmp_path, ["trainer.precision=64"]))


def _grads(net, x, regime, symbol, target, bf16: bool) -> tuple[dict[str, torch.Tensor], object]:
    net.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = net(x, regime, symbol)
        mean, logvar = out.forecast.unbind(-1)
        loss = -(out.signal * target).mean() + (0.5 * (logvar + (target - mean) ** 2 * (-logvar).exp())).mean()
    loss.backward()
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None and p.grad.any()}, out


def test_bf16_autocast_keeps_fp32_outputs_and_parameters_and_agrees_with_fp32():
    from .conftest import batch, tiny_net

    net = tiny_net("regime")
    x, regime, symbol = batch(b=64, t=32)
    target = torch.randn(64, generator=torch.Generator().manual_seed(3))
    full, out32 = _grads(net, x, regime, symbol, target, bf16=False)
    mixed, out16 = _grads(net, x, regime, symbol, target, bf16=True)
    assert out16.signal.dtype == out16.forecast.dtype == torch.float32  # the losses see fp32 heads' outputs
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert all(g.dtype == torch.float32 for g in mixed.values())
    # bf16 keeps 8 significant bits, and the error compounds through the cycles: measured 0.05 of the scale
    assert (out16.signal - out32.signal).abs().max() < 0.1 * out32.signal.std()
    assert torch.corrcoef(torch.stack([out16.signal, out32.signal]))[0, 1] > 0.999
    assert full.keys() == mixed.keys()
    flat = [torch.cat([g[n].flatten() for n in full]) for g in (full, mixed)]
    assert torch.nn.functional.cosine_similarity(*flat, dim=0) > 0.999  # measured 0.9999
    worst = min(torch.nn.functional.cosine_similarity(full[n].flatten(), mixed[n].flatten(), dim=0) for n in full)
    assert worst > 0.99  # measured 0.9995


class _CastLog(TorchDispatchMode):
    """Counts the bf16 casts of each tensor named in ``watched`` (by storage), and the dtypes attention gets."""

    def __init__(self, watched: dict[int, str]) -> None:
        super().__init__()
        self.watched, self.casts, self.attention = watched, Counter(), []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.ops.aten._to_copy.default and kwargs.get("dtype") == torch.bfloat16:
            name = self.watched.get(args[0].untyped_storage().data_ptr())
            if name is not None:
                self.casts[name] += 1
        if "scaled_dot_product" in func.__name__:
            self.attention.append({a.dtype for a in args[:3]})
        return func(*args, **kwargs)


def _lightning_autocast():
    """The region Lightning's bf16-mixed plugin wraps a training step in: autocast with its cast cache off."""
    return torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False)


def _segment(net, x, regime, symbol, target, cached: bool):
    """A training segment's forwards (with grad, then the ACT target's no-grad one) and its backward."""
    net.zero_grad()
    with _lightning_autocast():
        with weight_cast_cache() if cached else contextlib.nullcontext():
            out = net(x, regime, symbol)
            with torch.no_grad():
                net(x, regime, symbol, out.carry)
            loss = -(out.signal * target).mean() + out.forecast.square().mean()
        loss.backward()
    return out, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_weight_cast_cache_casts_each_weight_once_and_changes_no_number():
    from .conftest import batch, tiny_net

    net = tiny_net("regime")
    x, regime, symbol = batch(b=16, t=12)
    target = torch.randn(16, generator=torch.Generator().manual_seed(3))
    weights = {p.untyped_storage().data_ptr(): n for n, p in net.hrm.named_parameters() if p.dim() == 2}
    logs = {}
    for cached in (False, True):
        with _CastLog(weights) as logs[cached]:
            logs[cached].result = _segment(net, x, regime, symbol, target, cached)
    # hrm_tiny runs 2 x 2 cycles: each L weight is used 4 times a forward, each H weight twice, in both forwards
    level_uses = {"l_module": 8, "h_module": 4}
    for name in weights.values():
        expected = level_uses[name.split(".")[0]]
        if name == "l_module.embed.weight":
            expected = 2  # the input is embedded once a forward
        assert logs[False].casts[name] == expected, name
        assert logs[True].casts[name] == 1, name
    (out_plain, grads_plain), (out_cached, grads_cached) = logs[False].result, logs[True].result
    # the same bf16 copies enter the same products, and the one-step gradient uses each weight once with
    # grad: the numbers are identical, not just close
    assert torch.equal(out_plain.signal, out_cached.signal)
    assert grads_plain.keys() == grads_cached.keys()
    assert all(torch.equal(grads_plain[n], grads_cached[n]) for n in grads_plain)


def test_weight_cast_cache_leaves_nothing_stale_after_a_weight_update():
    lin = torch.nn.Linear(8, 4, bias=False)
    x = torch.randn(3, 8)
    with _lightning_autocast():
        with weight_cast_cache():
            before = lin(x)
            assert torch.equal(lin(x), before)  # served from the cache
        with torch.no_grad():
            lin.weight.mul_(-1.0)  # what an optimiser step does in place
        with weight_cast_cache():
            after = lin(x)
        assert not torch.is_autocast_cache_enabled()  # Lightning's setting is restored
    assert torch.equal(after, -before)  # bf16 rounding is symmetric: the fresh cast is exactly the negation


def test_weight_cast_cache_does_nothing_outside_autocast():
    lin, x = torch.nn.Linear(8, 4), torch.randn(3, 8)
    with weight_cast_cache():
        y = lin(x)
        assert not torch.is_autocast_enabled("cpu")
    assert y.dtype == torch.float32 and torch.equal(y, x @ lin.weight.T + lin.bias)


def test_attention_scores_run_in_fp32_under_cpu_autocast_and_agree_with_fp32():
    from .conftest import batch, tiny_net

    net = tiny_net("regime")
    x, regime, symbol = batch(b=16, t=12)
    with torch.no_grad():
        full = net(x, regime, symbol).signal
        with _CastLog({}) as log, _lightning_autocast(), weight_cast_cache():
            mixed = net(x, regime, symbol).signal
    assert log.attention and all(dtypes == {torch.float32} for dtypes in log.attention)
    # the projections still round to bf16 (8 significant bits): measured 0.02 of the signal's spread
    assert (mixed - full).abs().max() < 0.1 * full.std()
