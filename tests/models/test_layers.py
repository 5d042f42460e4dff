import math

import torch

from dualhrq.models.layers import Linear, rms_norm, trunc_normal_


def test_trunc_normal_has_requested_std_and_is_cut_at_two_sigma():
    torch.manual_seed(0)
    w = trunc_normal_(torch.empty(400_000), std=0.1)
    assert abs(w.std().item() - 0.1) < 1e-3
    sigma = 0.1 / 0.8796256610342398  # underlying normal of the truncated draw
    assert w.abs().max().item() <= 2 * sigma + 1e-6


def test_linear_is_lecun_normal_and_bias_free():
    lin = Linear(1024, 256)
    assert lin.bias is None
    assert abs(lin.weight.std().item() - 1 / math.sqrt(1024)) < 1e-3


def test_rms_norm_is_fp32_and_unit_rms():
    x = (10 * torch.randn(4, 7, 32)).to(torch.bfloat16)
    y = rms_norm(x)
    assert y.dtype == torch.bfloat16
    assert torch.allclose(y.float().square().mean(-1), torch.ones(4, 7), atol=2e-2)


def test_trunk_has_no_biases(make_net):
    net = make_net("regime")
    assert not [n for n, _ in net.hrm.named_parameters() if "bias" in n]


def test_attention_matches_a_float64_causal_softmax_with_rotated_pairs():
    from dualhrq.models.layers import Attention, RotaryEmbedding

    torch.manual_seed(0)
    b, t, heads, hd, base = 2, 5, 2, 4, 10_000.0
    attn, rope = Attention(heads * hd, heads), RotaryEmbedding(hd, base)
    x = torch.randn(b, t, heads * hd)
    got = attn(x, rope(t))
    # reference: pair (i, i + hd/2) of each head turns by position * base^(-2i/hd); softmax over earlier bars
    qkv = (x.double() @ attn.qkv.weight.double().T).view(b, t, 3, heads, hd)
    angle = torch.arange(t, dtype=torch.float64)[:, None] * base ** (-torch.arange(0, hd, 2).double() / hd)
    cos, sin = angle.cos()[None, :, None], angle.sin()[None, :, None]

    def turn(z):
        lo, hi = z[..., : hd // 2], z[..., hd // 2:]
        return torch.cat([lo * cos - hi * sin, hi * cos + lo * sin], dim=-1)

    q, k, v = turn(qkv[:, :, 0]), turn(qkv[:, :, 1]), qkv[:, :, 2]
    scores = torch.einsum("bihd,bjhd->bhij", q, k) / hd**0.5
    scores = scores.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    y = torch.einsum("bhij,bjhd->bihd", scores.softmax(-1), v).reshape(b, t, heads * hd)
    assert torch.allclose(got.double(), y @ attn.out.weight.double().T, atol=1e-5)
