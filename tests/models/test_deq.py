"""Fixed-point solvers against a direct linear solve, and the HRM's recursion and gradient modes."""

import pytest
import torch
from torch import Tensor

from dualhrq.errors import ConfigError
from dualhrq.models.deq import RecursionConfig, anderson, fixed_point_iteration, relative_residual
from dualhrq.models.hrm import _flat

B, D = 3, 40


def _linear_map(eigenvalues: Tensor, seed: int = 0):
    """z -> A z + b with A symmetric of the given spectrum; its fixed point solves (I - A) z = b."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(B, D, D, generator=g, dtype=torch.float64))
    a = q @ torch.diag_embed(eigenvalues.expand(B, D)) @ q.transpose(1, 2)
    b = torch.randn(B, D, generator=g, dtype=torch.float64)
    solution = torch.linalg.solve(torch.eye(D, dtype=torch.float64) - a, b)
    return (lambda z: (a @ z[..., None])[..., 0] + b), solution


@pytest.mark.parametrize("solver", [fixed_point_iteration, anderson])
def test_solvers_reach_the_fixed_point_of_a_contraction(solver):
    f, solution = _linear_map(torch.linspace(-0.6, 0.8, D, dtype=torch.float64))
    z, stats = solver(f, torch.zeros(B, D, dtype=torch.float64), tol=1e-9, max_iter=500)
    assert stats.residual < 1e-9 and stats.iterations < 500
    torch.testing.assert_close(z, solution, rtol=1e-7, atol=1e-7)
    # the reported residual is the worst sample's
    assert stats.residual == pytest.approx(float(relative_residual(f(z), z).max()), rel=1.0)


def test_anderson_needs_far_fewer_maps_on_a_slow_contraction():
    f, solution = _linear_map(torch.linspace(-0.5, 0.99, D, dtype=torch.float64))
    z_fp, fp = fixed_point_iteration(f, torch.zeros(B, D, dtype=torch.float64), tol=1e-8, max_iter=5000)
    z_aa, aa = anderson(f, torch.zeros(B, D, dtype=torch.float64), tol=1e-8, max_iter=5000, memory=5)
    assert aa.residual < 1e-8 and fp.residual < 1e-8
    assert aa.iterations * 3 < fp.iterations, (aa, fp)
    torch.testing.assert_close(z_aa, solution, rtol=1e-5, atol=1e-5)


def test_solvers_stop_at_max_iter_and_report_the_residual():
    f, _ = _linear_map(torch.full((D,), 0.999, dtype=torch.float64))
    for solver in (fixed_point_iteration, anderson):
        _, stats = solver(f, torch.zeros(B, D, dtype=torch.float64), tol=1e-12, max_iter=7)
        assert stats.iterations == 7 and stats.residual > 1e-12


@pytest.mark.parametrize(("cfg", "field"), [
    ({"solver": "newton"}, "solver"),
    ({"gradient": "implicit"}, "gradient"),
    ({"solver": "unroll", "gradient": "phantom"}, "gradient=phantom"),
    ({"solver": "anderson", "gradient": "full"}, "gradient=full"),
    ({"tol": 0.0}, "tol"),
    ({"max_iter": 0}, "max_iter"),
    ({"damping": 1.5}, "damping"),
    ({"tolerance": 1e-3}, "unknown keys"),
])
def test_bad_recursion_config_names_the_field(cfg, field):
    with pytest.raises(ConfigError, match=field):
        RecursionConfig.from_config(cfg)


def _loss(net, x):
    _, z_H, _ = net.hrm(x)
    return net.heads(z_H[:, -1])[1].square().sum()


def _grads(net, x) -> dict[str, Tensor]:
    net.zero_grad()
    _loss(net, x).backward()
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_full_gradient_equals_backprop_through_every_update(make_net, make_batch):
    """gradient=full against the same schedule written out with autograd on throughout."""
    x, _, _ = make_batch()
    net = make_net("none", h_cycles=2, l_cycles=3, recursion={"gradient": "full"})
    got = _grads(net, x)
    L, H = net.hrm.l_module, net.hrm.h_module
    x_emb = L.embed(x)
    z_H, z_L = H.z0.expand(*x.shape[:2], -1), L.z0.expand(*x.shape[:2], -1)
    for _ in range(2):
        for _ in range(3):
            z_L = L(z_L, z_H, x_emb, None)
        z_H = H(z_H, z_L)
    net.zero_grad()
    net.heads(z_H[:, -1])[1].square().sum().backward()
    for name, p in net.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got[name], p.grad, rtol=1e-5, atol=1e-6)
    one_step = _grads(make_net("none", h_cycles=2, l_cycles=3), x)
    assert not torch.allclose(one_step["hrm.l_module.embed.weight"], got["hrm.l_module.embed.weight"])


def test_deq_one_step_differentiates_one_update_at_the_solution(make_net, make_batch):
    """The DEQ one-step gradient equals that of a single L+H update applied, with autograd,
    to the fixed point found by the solver alone."""
    x, _, _ = make_batch()
    net = make_net("none", norm="pre", recursion={"solver": "anderson", "tol": 1e-4, "max_iter": 40})
    got = _grads(net, x)
    hrm = net.hrm
    init = hrm.initial_carry(*x.shape[:2])
    b, t, d_l = init.z_L.shape
    x_emb = hrm.l_module.embed(x)

    def split(z: Tensor) -> tuple[Tensor, Tensor]:
        return z[:, : t * d_l].view(b, t, d_l), z[:, t * d_l:].view(b, t, -1)

    with torch.no_grad():
        z, _ = anderson(lambda z: _flat(*hrm._cycle(*split(z), x_emb, None)), _flat(init.z_L, init.z_H),
                        tol=1e-4, max_iter=40)
    z_L, z_H = split(z)
    z_L = hrm.l_module(z_L, z_H, x_emb, None)
    z_H = hrm.h_module(z_H, z_L)
    net.zero_grad()
    net.heads(z_H[:, -1])[1].square().sum().backward()
    for name, p in net.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=1e-6)


def test_phantom_gradient_with_one_undamped_step_is_the_one_step_gradient(make_net, make_batch):
    x, _, _ = make_batch()
    rec = {"solver": "fixed_point", "tol": 1e-3, "max_iter": 5}
    one = _grads(make_net("none", recursion={**rec, "gradient": "one_step"}), x)
    phantom = _grads(make_net("none", recursion={**rec, "gradient": "phantom", "phantom_steps": 1, "damping": 1.0}), x)
    for name in one:
        torch.testing.assert_close(phantom[name], one[name])
    two = _grads(make_net("none", recursion={**rec, "gradient": "phantom", "phantom_steps": 2}), x)
    assert not torch.allclose(two["hrm.l_module.embed.weight"], one["hrm.l_module.embed.weight"])


@pytest.mark.parametrize("solver", ["fixed_point", "anderson"])
def test_pre_norm_hrm_reaches_its_fixed_point(make_net, make_batch, solver):
    """The solver stops under tol before max_iter, and the state it hands back moves by less than
    tol when one more H-cycle is applied: an independent check of the residual it reports."""
    x, _, _ = make_batch()
    net = make_net("none", norm="pre", recursion={"solver": solver, "tol": 1e-2, "max_iter": 100})
    with torch.no_grad():
        carry, _, stats = net.hrm(x)
        again = net.hrm._cycle(carry.z_L, carry.z_H, net.hrm.l_module.embed(x), None)
    assert 1 < stats.iterations < 100 and stats.residual < 1e-2
    assert float(relative_residual(_flat(*again), _flat(carry.z_L, carry.z_H)).max()) < 1e-2
