"""trainer.precision: auto picks bf16 only on hardware that multiplies bf16 natively; bad values are refused."""

from __future__ import annotations

import pytest
import torch

from dualhrq.errors import ConfigError
from dualhrq.models.precision import cpu_flags, resolve_precision


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
