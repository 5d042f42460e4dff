"""Hierarchical Reasoning Model over a window of bars.

Two coupled recurrent levels (Wang et al. 2025, "Hierarchical Reasoning
Model"): a fast L-module (tactical) that reads the embedded input window and
the slow H-module (strategic) state, and an H-module that reads the L state
once every ``l_cycles`` L updates. By default training uses the one-step
gradient: all updates but the last L and the last H update run without
autograd, so memory does not grow with the number of cycles. ``deq.py`` holds
the alternatives (fixed-point solvers, phantom and full gradients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dualhrq.config import positive_int
from dualhrq.errors import ConfigError
from dualhrq.models.deq import RecursionConfig, SolverStats, anderson, fixed_point_iteration, relative_residual
from dualhrq.models.layers import Block, Linear, RotaryEmbedding, rms_norm, trunc_normal_

Film = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class LevelSize:
    """Width, depth, attention heads and SwiGLU hidden size of one level."""

    dim: int
    layers: int
    heads: int
    ffn_hidden: int

    @classmethod
    def from_config(cls, cfg: Mapping[str, int], field: str) -> LevelSize:
        """Validate a ``{dim, layers, heads, ffn_hidden}`` mapping read at ``field`` (relative to the model)."""
        keys = ("dim", "layers", "heads", "ffn_hidden")
        if set(cfg) != set(keys):
            raise ConfigError(f"{field} must have exactly the keys {list(keys)}, got {sorted(cfg)}.", field=field)
        size = cls(**{k: positive_int(cfg[k], f"{field}.{k}") for k in keys})
        if size.dim % size.heads or (size.dim // size.heads) % 2:
            raise ConfigError(
                f"{field}.dim ({size.dim}) must be divisible by {field}.heads ({size.heads}) "
                "into an even head size (rotary embedding rotates pairs); e.g. heads of 64 dims.", field=f"{field}.dim"
            )
        return size


@dataclass
class HRMCarry:
    """Recurrent state of both levels, each [B, T, dim]."""

    z_H: Tensor
    z_L: Tensor


class ReasoningModule(nn.Module):
    """A stack of blocks; the input injection is added to the state before the blocks.

    With pre-norm blocks the output is normalised once, so the recurrent state
    stays at unit RMS either way.
    """

    def __init__(self, size: LevelSize, rope_base: float, norm: str = "post") -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(size.dim, size.heads, size.ffn_hidden, norm) for _ in range(size.layers))
        self.rope = RotaryEmbedding(size.dim // size.heads, rope_base)
        self.final_norm = norm == "pre"

    def forward(self, z: Tensor, injection: Tensor, film: Film | None = None) -> Tensor:
        """Update ``z``; ``film`` = (gamma, beta) modulates each block's output: [B, layers, dim] the same at
        every bar, or [B, T, layers, dim] one per bar."""
        z = z + injection
        cos_sin = self.rope(z.shape[1])
        if film is not None and film[0].ndim == 3:
            film = (film[0][:, None], film[1][:, None])
        for i, block in enumerate(self.blocks):
            z = block(z, cos_sin)
            if film is not None:
                z = film[0][:, :, i] * z + film[1][:, :, i]
        return rms_norm(z) if self.final_norm else z


class LModule(nn.Module):
    """Fast level: owns the input embedding and the H->L projection; FiLM-conditioned."""

    def __init__(self, n_features: int, size: LevelSize, h_dim: int, rope_base: float, norm: str) -> None:
        super().__init__()
        self.embed = Linear(n_features, size.dim)
        self.from_h = Linear(h_dim, size.dim) if h_dim != size.dim else nn.Identity()
        self.level = ReasoningModule(size, rope_base, norm)
        self.register_buffer("z0", trunc_normal_(torch.empty(size.dim), std=1.0))

    def forward(self, z_L: Tensor, z_H: Tensor, x_emb: Tensor, film: Film | None) -> Tensor:
        return self.level(z_L, self.from_h(z_H) + x_emb, film)


class HModule(nn.Module):
    """Slow level: owns the L->H projection; reads only the L state."""

    def __init__(self, size: LevelSize, l_dim: int, rope_base: float, norm: str) -> None:
        super().__init__()
        self.from_l = Linear(l_dim, size.dim) if l_dim != size.dim else nn.Identity()
        self.level = ReasoningModule(size, rope_base, norm)
        self.register_buffer("z0", trunc_normal_(torch.empty(size.dim), std=1.0))

    def forward(self, z_H: Tensor, z_L: Tensor) -> Tensor:
        return self.level(z_H, self.from_l(z_L))


class HRM(nn.Module):
    """H_cycles x L_cycles of coupled updates, run and differentiated as ``recursion`` says."""

    def __init__(
        self,
        *,
        n_features: int,
        h: LevelSize,
        l: LevelSize,  # noqa: E741 - the paper's name for the low level
        h_cycles: int,
        l_cycles: int,
        rope_base: float,
        norm: str = "post",
        recursion: RecursionConfig | None = None,
    ) -> None:
        super().__init__()
        self.h_cycles, self.l_cycles = h_cycles, l_cycles
        self.recursion = recursion or RecursionConfig()
        self.l_module = LModule(n_features, l, h.dim, rope_base, norm)
        self.h_module = HModule(h, l.dim, rope_base, norm)

    def initial_carry(self, batch: int, seq_len: int) -> HRMCarry:
        """The fixed initial states broadcast over batch and time."""
        return HRMCarry(
            z_H=self.h_module.z0.expand(batch, seq_len, -1),
            z_L=self.l_module.z0.expand(batch, seq_len, -1),
        )

    def forward(
        self, x: Tensor, film: Film | None = None, carry: HRMCarry | None = None
    ) -> tuple[HRMCarry, Tensor, SolverStats]:
        """Reason over ``x`` [B, T, F]; return the detached new carry, z_H [B, T, h_dim] with grad,
        and the solver's iterations and final residual."""
        x_emb = self.l_module.embed(x)
        if carry is None:
            carry = self.initial_carry(x.shape[0], x.shape[1])
        rec = self.recursion
        if rec.solver == "unroll":
            z_L, z_H, stats = self._unroll(carry.z_L, carry.z_H, x_emb, film, full=rec.gradient == "full")
        else:
            z_L, z_H, stats = self._equilibrium(carry.z_L, carry.z_H, x_emb, film)
        return HRMCarry(z_H=z_H.detach(), z_L=z_L.detach()), z_H, stats

    def _update(self, z_L: Tensor, z_H: Tensor, x_emb: Tensor, film: Film | None) -> tuple[Tensor, Tensor]:
        """One L update then one H update: the step the one-step gradient differentiates."""
        z_L = self.l_module(z_L, z_H, x_emb, film)
        return z_L, self.h_module(z_H, z_L)

    def _cycle(self, z_L: Tensor, z_H: Tensor, x_emb: Tensor, film: Film | None) -> tuple[Tensor, Tensor]:
        """One H-cycle: ``l_cycles`` L updates, then one H update."""
        for _ in range(self.l_cycles - 1):
            z_L = self.l_module(z_L, z_H, x_emb, film)
        return self._update(z_L, z_H, x_emb, film)

    def _unroll(self, z_L: Tensor, z_H: Tensor, x_emb: Tensor, film: Film | None,
                full: bool) -> tuple[Tensor, Tensor, SolverStats]:
        """The reference schedule. With the one-step gradient every update but the last
        L and the last H runs under no_grad, so no earlier computation is in the graph."""
        with torch.set_grad_enabled(full and torch.is_grad_enabled()):
            for _ in range(self.h_cycles - 1):
                z_L, z_H = self._cycle(z_L, z_H, x_emb, film)
            start = _flat(z_L, z_H).detach()
            for _ in range(self.l_cycles - 1):
                z_L = self.l_module(z_L, z_H, x_emb, film)
        # (I - J)^-1 ~ I: only the final L and H update carry gradient
        z_L, z_H = self._update(z_L, z_H, x_emb, film)
        end = _flat(z_L, z_H).detach()
        residual = float(relative_residual(end, start).max())
        return z_L, z_H, SolverStats(iterations=self.h_cycles, residual=residual)

    def _equilibrium(self, z_L: Tensor, z_H: Tensor, x_emb: Tensor,
                     film: Film | None) -> tuple[Tensor, Tensor, SolverStats]:
        """Solve z = cycle(z) for the joint state, then differentiate as configured."""
        rec = self.recursion
        b, t, d_l = z_L.shape
        split = t * d_l

        def cycle(z: Tensor) -> Tensor:
            zl, zh = z[:, :split].view(b, t, d_l), z[:, split:].view(b, t, -1)
            return _flat(*self._cycle(zl, zh, x_emb, film))

        z0 = _flat(z_L, z_H)
        if rec.gradient == "full":
            z, stats = fixed_point_iteration(cycle, z0, tol=rec.tol, max_iter=rec.max_iter)
        else:
            with torch.no_grad():
                if rec.solver == "anderson":
                    z, stats = anderson(cycle, z0, tol=rec.tol, max_iter=rec.max_iter, memory=rec.memory)
                else:
                    z, stats = fixed_point_iteration(cycle, z0, tol=rec.tol, max_iter=rec.max_iter)
        z_L, z_H = z[:, :split].view(b, t, d_l), z[:, split:].view(b, t, -1)
        if rec.gradient == "one_step":
            z_L, z_H = self._update(z_L, z_H, x_emb, film)
        elif rec.gradient == "phantom":
            lam = rec.damping
            for _ in range(rec.phantom_steps):
                f_L, f_H = self._update(z_L, z_H, x_emb, film)
                z_L, z_H = (1 - lam) * z_L + lam * f_L, (1 - lam) * z_H + lam * f_H
        return z_L, z_H, stats


def _flat(z_L: Tensor, z_H: Tensor) -> Tensor:
    """The joint state as one [B, T * (d_L + d_H)] vector per sample."""
    return torch.cat([z_L.reshape(z_L.shape[0], -1), z_H.reshape(z_H.shape[0], -1)], 1)
