"""Transformer building blocks and initialisers shared by the H- and L-modules.

Follows the HRM reference: parameter-free RMSNorm in fp32, rotary position
embedding, bias-free attention and SwiGLU, post-norm residual blocks and
truncated LeCun-normal weights. Attention is causal because a decision at bar
``t`` may only see bars up to ``t``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CosSin = tuple[Tensor, Tensor]

# Standard deviation of a unit normal truncated to [-2, 2]; dividing by it makes
# the truncated draw have the requested std (as jax.nn.initializers.lecun_normal).
_TRUNC2_STD = math.sqrt(
    1.0 - 4.0 * math.exp(-2.0) / math.sqrt(2.0 * math.pi) / math.erf(2.0 / math.sqrt(2.0))
)


@torch.no_grad()
def trunc_normal_(tensor: Tensor, std: float) -> Tensor:
    """Fill ``tensor`` in place from a normal truncated at 2 sigma whose std is ``std``.

    Inverse-CDF sampling: one pass, unlike rejection sampling, so a 27M model
    initialises in well under a second.
    """
    sigma = std / _TRUNC2_STD
    bound = math.erf(2.0 / math.sqrt(2.0))
    tensor.uniform_(-bound, bound).erfinv_().mul_(math.sqrt(2.0) * sigma)
    return tensor.clamp_(-2.0 * sigma, 2.0 * sigma)


class Linear(nn.Linear):
    """``nn.Linear`` with truncated LeCun-normal weights (std 1/sqrt(fan_in)) and zero bias.

    Unit-variance inputs give unit-variance outputs, so deep post-norm stacks
    start well-scaled. Bias-free by default: the trunk has no biases.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__(in_features, out_features, bias=bias)

    def reset_parameters(self) -> None:
        trunc_normal_(self.weight, std=self.in_features**-0.5)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


def rms_norm(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Parameter-free RMSNorm, computed in fp32 so bf16 autocast stays stable."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + eps)).to(x.dtype)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (rotate-half form) for any window length."""

    def __init__(self, head_dim: int, base: float) -> None:
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, seq_len: int) -> CosSin:
        """Return (cos, sin), each [seq_len, head_dim] in fp32."""
        t = torch.arange(seq_len, device=self.inv_freq.device, dtype=torch.float32)
        freqs = torch.outer(t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()


def apply_rotary(x: Tensor, cos_sin: CosSin) -> Tensor:
    """Rotate ``x`` [..., T, head_dim] by position; the result is fp32 whatever ``x``'s dtype."""
    cos, sin = cos_sin
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return xf * cos + torch.cat((-x2, x1), dim=-1) * sin


class Attention(nn.Module):
    """Causal multi-head self-attention without biases.

    On the CPU the scores and their softmax run in fp32 even under bf16 autocast: over a window of a few dozen
    bars they are a small share of the work, and the CPU's bf16 attention kernels are the slower ones (forward
    and backward of hrm_27m's L-level shape, 32 x 9 heads x 32 bars x 64, took 60 ms in bf16 against 24 ms in
    fp32 on one AVX512-BF16 core). The projections stay in the autocast dtype. On a GPU attention follows
    autocast, whose bf16 kernels are the fast ones there.
    """

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = Linear(dim, 3 * dim)
        self.out = Linear(dim, dim)

    def forward(self, x: Tensor, cos_sin: CosSin) -> Tensor:
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(qkv[:2], cos_sin).unbind(0)  # q and k in one pass: half the small kernels
        v = qkv[2]
        if x.device.type == "cpu":
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q, k, v.float(), is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q.to(v.dtype), k.to(v.dtype), v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


class SwiGLU(nn.Module):
    """Gated MLP ``down(silu(gate(x)) * up(x))`` with an explicit hidden size."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_up = Linear(dim, 2 * hidden)
        self.down = Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


NORMS = ("post", "pre")


class Block(nn.Module):
    """Residual block with attention and SwiGLU, post-norm (default) or pre-norm.

    Post-norm, ``x = norm(x + f(x))``, is the HRM reference's choice: it keeps
    every recurrent state at unit RMS, which the repeated H/L updates rely on
    to stay bounded. Pre-norm, ``x = x + f(norm(x))``, is the usual choice for
    deep feed-forward stacks; a recurrent module using it normalises its
    output once (see ``ReasoningModule``).
    """

    def __init__(self, dim: int, n_heads: int, ffn_hidden: int, norm: str = "post", eps: float = 1e-5) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.attn = Attention(dim, n_heads)
        self.mlp = SwiGLU(dim, ffn_hidden)
        self.pre_norm = norm == "pre"
        self.eps = eps

    def forward(self, x: Tensor, cos_sin: CosSin) -> Tensor:
        if self.pre_norm:
            x = x + self.attn(rms_norm(x, self.eps), cos_sin)
            return x + self.mlp(rms_norm(x, self.eps))
        x = rms_norm(x + self.attn(x, cos_sin), self.eps)
        return rms_norm(x + self.mlp(x), self.eps)
