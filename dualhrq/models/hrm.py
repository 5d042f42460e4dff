"""Hierarchical Reasoning Model over a window of bars.

Two coupled recurrent levels (Wang et al. 2025, "Hierarchical Reasoning
Model"): a fast L-module (tactical) that reads the embedded input window and
the slow H-module (strategic) state, and an H-module that reads the L state
once every ``l_cycles`` L updates. Training uses the one-step gradient: all
updates but the last L and the last H update run without autograd, so memory
does not grow with the number of cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dualhrq.errors import ConfigError, positive_int
from dualhrq.models.layers import Block, Linear, RotaryEmbedding, trunc_normal_

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
        """Validate a ``{dim, layers, heads, ffn_hidden}`` mapping found at config path ``field``."""
        keys = ("dim", "layers", "heads", "ffn_hidden")
        if set(cfg) != set(keys):
            raise ConfigError(f"{field} must have exactly the keys {list(keys)}, got {sorted(cfg)}.")
        size = cls(**{k: positive_int(cfg[k], f"{field}.{k}") for k in keys})
        if size.dim % size.heads or (size.dim // size.heads) % 2:
            raise ConfigError(
                f"{field}.dim ({size.dim}) must be divisible by {field}.heads ({size.heads}) "
                "into an even head size (rotary embedding rotates pairs); e.g. heads of 64 dims."
            )
        return size


@dataclass
class HRMCarry:
    """Recurrent state of both levels, each [B, T, dim]."""

    z_H: Tensor
    z_L: Tensor


class ReasoningModule(nn.Module):
    """A stack of blocks; the input injection is added to the state before the blocks."""

    def __init__(self, size: LevelSize, rope_base: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(size.dim, size.heads, size.ffn_hidden) for _ in range(size.layers))
        self.rope = RotaryEmbedding(size.dim // size.heads, rope_base)

    def forward(self, z: Tensor, injection: Tensor, film: Film | None = None) -> Tensor:
        """Update ``z``; ``film`` = (gamma, beta) [B, layers, dim] modulates each block's output."""
        z = z + injection
        cos_sin = self.rope(z.shape[1])
        for i, block in enumerate(self.blocks):
            z = block(z, cos_sin)
            if film is not None:
                z = film[0][:, i, None] * z + film[1][:, i, None]
        return z


class LModule(nn.Module):
    """Fast level: owns the input embedding and the H->L projection; FiLM-conditioned."""

    def __init__(self, n_features: int, size: LevelSize, h_dim: int, rope_base: float) -> None:
        super().__init__()
        self.embed = Linear(n_features, size.dim)
        self.from_h = Linear(h_dim, size.dim) if h_dim != size.dim else nn.Identity()
        self.level = ReasoningModule(size, rope_base)
        self.register_buffer("z0", trunc_normal_(torch.empty(size.dim), std=1.0))

    def forward(self, z_L: Tensor, z_H: Tensor, x_emb: Tensor, film: Film | None) -> Tensor:
        return self.level(z_L, self.from_h(z_H) + x_emb, film)


class HModule(nn.Module):
    """Slow level: owns the L->H projection; reads only the L state."""

    def __init__(self, size: LevelSize, l_dim: int, rope_base: float) -> None:
        super().__init__()
        self.from_l = Linear(l_dim, size.dim) if l_dim != size.dim else nn.Identity()
        self.level = ReasoningModule(size, rope_base)
        self.register_buffer("z0", trunc_normal_(torch.empty(size.dim), std=1.0))

    def forward(self, z_H: Tensor, z_L: Tensor) -> Tensor:
        return self.level(z_H, self.from_l(z_L))


class HRM(nn.Module):
    """H_cycles x L_cycles of coupled updates with the one-step gradient."""

    def __init__(
        self,
        *,
        n_features: int,
        h: LevelSize,
        l: LevelSize,  # noqa: E741 - the paper's name for the low level
        h_cycles: int,
        l_cycles: int,
        rope_base: float,
    ) -> None:
        super().__init__()
        self.h_cycles, self.l_cycles = h_cycles, l_cycles
        self.l_module = LModule(n_features, l, h.dim, rope_base)
        self.h_module = HModule(h, l.dim, rope_base)

    def initial_carry(self, batch: int, seq_len: int) -> HRMCarry:
        """The fixed initial states broadcast over batch and time."""
        return HRMCarry(
            z_H=self.h_module.z0.expand(batch, seq_len, -1),
            z_L=self.l_module.z0.expand(batch, seq_len, -1),
        )

    def forward(
        self, x: Tensor, film: Film | None = None, carry: HRMCarry | None = None
    ) -> tuple[HRMCarry, Tensor]:
        """Reason over ``x`` [B, T, F]; return the detached new carry and z_H [B, T, h_dim] with grad."""
        x_emb = self.l_module.embed(x)
        if carry is None:
            carry = self.initial_carry(x.shape[0], x.shape[1])
        z_H, z_L = carry.z_H, carry.z_L

        # All updates but the last L and the last H one: no autograd graph is kept.
        # The H-module steps once after every l_cycles L steps.
        with torch.no_grad():
            for step in range(self.h_cycles * self.l_cycles - 1):
                z_L = self.l_module(z_L, z_H, x_emb, film)
                if (step + 1) % self.l_cycles == 0:
                    z_H = self.h_module(z_H, z_L)

        # One-step gradient: treat the state as a fixed point and backpropagate
        # through the final L and H update only ((I - J)^-1 ~ I).
        z_L = self.l_module(z_L, z_H, x_emb, film)
        z_H = self.h_module(z_H, z_L)
        return HRMCarry(z_H=z_H.detach(), z_L=z_L.detach()), z_H
