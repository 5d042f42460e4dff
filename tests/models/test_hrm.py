"""One-step gradient, causality and determinism of the HRM core."""

import torch
from torch import Tensor

from dualhrq.models.network import DualHRQNet


def _level(module, z: Tensor, injection: Tensor, film=None) -> Tensor:
    """One level update written out by hand from the module's blocks."""
    z = z + injection
    cos_sin = module.level.rope(z.shape[1])
    for i, block in enumerate(module.level.blocks):
        z = block(z, cos_sin)
        if film is not None:
            z = film[0][:, i].unsqueeze(1) * z + film[1][:, i].unsqueeze(1)
    return z


def _hand_built(net: DualHRQNet, x, regime, symbol, h_cycles: int, l_cycles: int, one_step: bool):
    """The reference schedule (nested loops as in HRM); ``one_step`` puts all but the last L and H
    update under no_grad, else it backpropagates through every update."""
    L, H = net.hrm.l_module, net.hrm.h_module
    film = net.conditioning(regime, symbol)
    x_emb = L.embed(x)
    z_H = H.z0.expand(x.shape[0], x.shape[1], -1)
    z_L = L.z0.expand(x.shape[0], x.shape[1], -1)
    with torch.set_grad_enabled(not one_step):
        for i in range(h_cycles):
            for j in range(l_cycles):
                if (i, j) != (h_cycles - 1, l_cycles - 1):
                    z_L = _level(L, z_L, L.from_h(z_H) + x_emb, film)
            if i != h_cycles - 1:
                z_H = _level(H, z_H, H.from_l(z_L))
    z_L = _level(L, z_L, L.from_h(z_H) + x_emb, film)
    z_H = _level(H, z_H, H.from_l(z_L))
    return net.heads(z_H[:, -1])[:2]


def _loss(signal: Tensor, forecast: Tensor) -> Tensor:
    return signal.sum() + forecast.square().sum()


def _grads(net: DualHRQNet, loss: Tensor) -> dict[str, Tensor]:
    net.zero_grad()
    loss.backward()
    return {n: p.grad.clone() for n, p in net.named_parameters()}


def test_one_step_gradient_matches_hand_built_graph(make_net, make_batch, film_on):
    net = make_net("regime", h_cycles=3, l_cycles=2)
    film_on(net)
    x, regime, symbol = make_batch()
    out = net(x, regime, symbol)
    got = _grads(net, _loss(out.signal, out.forecast))
    want = _grads(net, _loss(*_hand_built(net, x, regime, symbol, 3, 2, one_step=True)))
    full = _grads(net, _loss(*_hand_built(net, x, regime, symbol, 3, 2, one_step=False)))

    assert got.keys() == want.keys()
    for name in got:
        assert torch.allclose(got[name], want[name], atol=1e-6, rtol=1e-5), name
    # Not vacuous: every parameter gets a gradient, and full backpropagation differs.
    assert all(g.abs().sum() > 0 for g in got.values())
    assert not torch.allclose(got["hrm.l_module.embed.weight"], full["hrm.l_module.embed.weight"])


def _graph_nodes(t: Tensor) -> int:
    seen, stack = set(), [t.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(child for child, _ in node.next_functions)
    return len(seen)


def test_autograd_graph_does_not_grow_with_cycles(make_net, make_batch, film_on):
    """With (1, 1) cycles the graph is exactly one L and one H update; more cycles must add nothing."""
    x, regime, symbol = make_batch()
    sizes = {}
    for cycles in [(1, 1), (2, 2), (4, 3)]:
        net = make_net("regime", h_cycles=cycles[0], l_cycles=cycles[1])
        film_on(net)
        out = net(x, regime, symbol)
        sizes[cycles] = _graph_nodes(_loss(out.signal, out.forecast))
    assert len(set(sizes.values())) == 1, sizes


def test_carry_is_detached_and_z_h_carries_grad(make_net, make_batch):
    net = make_net("none")
    x, _, _ = make_batch()
    carry, z_H, _ = net.hrm(x)
    assert z_H.requires_grad and not carry.z_H.requires_grad and not carry.z_L.requires_grad
    assert torch.equal(carry.z_H, z_H.detach())


def test_future_bars_do_not_change_past_states(make_net, make_batch, film_on):
    net = make_net("regime").eval()
    film_on(net)
    x, regime, symbol = make_batch(t=12)
    t = 6
    x_future = x.clone()
    x_future[:, t + 1:] = 5 * torch.randn_like(x_future[:, t + 1:])
    film = net.conditioning(regime, symbol)
    with torch.no_grad():
        carry, z_H, _ = net.hrm(x, film)
        carry2, z_H2, _ = net.hrm(x_future, film)
        truncated = net(x[:, : t + 1], regime, symbol)
        signal_at_t, forecast_at_t, _ = net.heads(z_H[:, t])
    assert torch.allclose(z_H[:, : t + 1], z_H2[:, : t + 1], atol=1e-5)
    assert torch.allclose(carry.z_L[:, : t + 1], carry2.z_L[:, : t + 1], atol=1e-5)
    assert not torch.allclose(z_H[:, t + 1:], z_H2[:, t + 1:], atol=1e-3)
    # The decision on a window cut at t equals the full window's state at t.
    assert torch.allclose(truncated.signal, signal_at_t, atol=1e-5)
    assert torch.allclose(truncated.forecast, forecast_at_t, atol=1e-5)


def test_same_seed_same_outputs(make_net, make_batch):
    x, regime, symbol = make_batch()
    a = make_net("regime", seed=7)(x, regime, symbol)
    b = make_net("regime", seed=7)(x, regime, symbol)
    c = make_net("regime", seed=8)(x, regime, symbol)
    assert torch.equal(a.signal, b.signal) and torch.equal(a.forecast, b.forecast)
    assert not torch.equal(a.forecast, c.forecast)
