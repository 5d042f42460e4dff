"""``trainer.precision``: which arithmetic the model trains and predicts in.

``auto`` picks bf16 mixed precision where the hardware runs bf16 matrix
products natively (a CUDA device that supports bf16; a CPU with AVX512-BF16 or
AMX), since that is where bf16 is faster than fp32, and fp32 everywhere else,
where emulated bf16 would be slower and no more useful. Under ``bf16-mixed``
only the matrix products run in bf16: the parameters, optimiser state and
checkpoints stay fp32, and the model computes its norms, rotary embedding,
attention scores (on the CPU), heads' outputs and losses in fp32
(``layers.py``, ``heads.py``).

Lightning enters autocast around each ``training_step`` with its cast cache off,
since the cache would keep bf16 copies of weights that an optimiser step has
since changed. Then every layer call casts its fp32 weight afresh, and an HRM
segment calls each level several times (H_cycles x L_cycles updates, twice
with the ACT target's forward). :func:`weight_cast_cache` turns the cache on
for a span in which the weights do not change, and empties it at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from dualhrq.errors import ConfigError

AUTO = "auto"
CHOICES = (AUTO, "32-true", "bf16-mixed", "16-mixed")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU feature flags the kernel reports (empty where it does not, e.g. not on Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def resolve_precision(requested: str, accelerator: str = "auto", *, cuda_bf16: bool | None = None,
                      flags: frozenset[str] | None = None) -> str:
    """The Lightning precision to run with for ``trainer.precision=requested`` on ``trainer.accelerator``.

    ``cuda_bf16`` and ``flags`` describe the hardware; left None they are read from this machine.
    """
    if requested not in CHOICES:
        raise ConfigError(f"trainer.precision must be one of {list(CHOICES)}, got {requested!r}. Fix: use auto "
                          "(bf16-mixed where the hardware has native bf16, else 32-true) or name one.")
    on_cuda = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    if requested == "16-mixed" and not on_cuda:
        raise ConfigError("trainer.precision=16-mixed needs a CUDA device; this run is on the CPU. Fix: use auto "
                          "or bf16-mixed.")
    if requested != AUTO:
        return requested
    if on_cuda:
        native = torch.cuda.is_bf16_supported() if cuda_bf16 is None else cuda_bf16
    else:
        native = bool(set(BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    return "bf16-mixed" if native else "32-true"


@contextmanager
def weight_cast_cache() -> Iterator[None]:
    """Inside an autocast region, cast each fp32 weight to the autocast dtype once for the span of the block.

    The weights must not change inside the block (no optimiser step): cached copies would go stale. The cache is
    emptied on the way out. Outside autocast this does nothing. Numbers are those of uncached autocast, except
    that a weight used with gradient more than once sums its gradients in the low precision before the one cast
    back to fp32 (autocast's own default behaviour).
    """
    if not any(torch.is_autocast_enabled(device) for device in ("cpu", "cuda")):
        yield
        return
    previous = torch.is_autocast_cache_enabled()
    torch.set_autocast_cache_enabled(True)
    try:
        yield
    finally:
        torch.set_autocast_cache_enabled(previous)
        torch.clear_autocast_cache()
