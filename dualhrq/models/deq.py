"""The HRM recursion as a fixed-point problem: solvers, gradient modes, their config.

An HRM forward pass iterates a map ``z <- f(z; x)`` on the joint state
z = (z_L, z_H). Read as a deep equilibrium model (Bai, Kolter and Koltun 2019,
"Deep Equilibrium Models"), the state it converges to is a fixed point
z* = f(z*), which a solver can find faster than plain unrolling, and whose
gradient can be approximated without backpropagating through the iterations:

* one-step (Jacobian-free) gradient: backpropagate through one update applied
  at z*, i.e. (I - J)^-1 ~ I (Fung et al. 2022, "JFB: Jacobian-Free
  Backpropagation for Implicit Networks"; the HRM's own choice);
* phantom gradient: k damped updates z <- (1 - lambda) z + lambda f(z) from z*
  with autograd (Geng et al. 2021, "On Training Implicit Models");
* full backpropagation through every iteration (memory grows with depth; for
  ablation).

Solvers work on a flat state [B, D] and stop when every sample's relative
residual ||f(z) - z|| / ||f(z)|| is under ``tol`` or after ``max_iter`` maps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from torch import Tensor

from dualhrq.config import Positive, PositiveInt, between, check_fields, one_of, parse
from dualhrq.errors import ConfigError

SOLVERS = ("unroll", "fixed_point", "anderson")
GRADIENTS = ("one_step", "phantom", "full")
FlatMap = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class RecursionConfig:
    """How the H/L recursion is run (``model.net.recursion``).

    ``unroll`` runs exactly H_cycles x L_cycles updates, as the reference HRM;
    ``fixed_point`` and ``anderson`` iterate one H-cycle (L_cycles L updates and
    one H update) to ``tol`` within ``max_iter`` cycles.
    """

    solver: Annotated[str, one_of(SOLVERS)] = "unroll"
    gradient: Annotated[str, one_of(GRADIENTS)] = "one_step"
    tol: Positive = 1e-3
    max_iter: PositiveInt = 30
    memory: PositiveInt = 5
    phantom_steps: PositiveInt = 2
    damping: Annotated[float, between(0, 1, lo_open=True)] = 0.5

    def __post_init__(self) -> None:
        check_fields(self)
        if self.solver == "unroll" and self.gradient == "phantom":
            raise ConfigError("gradient=phantom differentiates at a solved fixed point; set solver to fixed_point "
                              "or anderson, or use gradient one_step or full.", field="gradient")
        if self.solver == "anderson" and self.gradient == "full":
            raise ConfigError("gradient=full backpropagates through plain iterations only; use solver=fixed_point "
                              "(or unroll) for full backpropagation.", field="gradient")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None, where: str = "net.recursion") -> RecursionConfig:
        """Parse the mapping read at ``where`` (relative to the model's config); None gives the reference
        defaults."""
        return parse(cls, cfg, where)


@dataclass(frozen=True)
class SolverStats:
    """Maps applied and the worst sample's final relative residual."""

    iterations: int
    residual: float


def relative_residual(fz: Tensor, z: Tensor) -> Tensor:
    """Per-sample ||f(z) - z|| / ||f(z)|| over all but the batch dimension."""
    diff = (fz - z).flatten(1).norm(dim=1)
    return diff / (fz.flatten(1).norm(dim=1) + 1e-8)


def fixed_point_iteration(f: FlatMap, z0: Tensor, *, tol: float, max_iter: int) -> tuple[Tensor, SolverStats]:
    """Picard iteration z <- f(z); returns the last f(z). Keeps autograd if the caller enables it."""
    z = z0
    for k in range(1, max_iter + 1):
        fz = f(z)
        residual = relative_residual(fz.detach(), z.detach()).max()
        z = fz
        if residual < tol:
            break
    return z, SolverStats(iterations=k, residual=float(residual))


@torch.no_grad()
def anderson(f: FlatMap, z0: Tensor, *, tol: float, max_iter: int, memory: int = 5, ridge: float = 1e-4,
             beta: float = 1.0) -> tuple[Tensor, SolverStats]:
    """Anderson acceleration (type II, Walker and Ni 2011, "Anderson Acceleration for Fixed-Point Iterations").

    Each new iterate mixes the last ``memory`` map outputs with weights alpha
    that minimise ||sum_i alpha_i (f(z_i) - z_i)|| subject to sum alpha = 1,
    solved per sample as a bordered linear system with a ridge relative to the
    residuals' own scale. Returns the
    last f(z); no autograd graph is kept.
    """
    b, d = z0.shape
    m = memory
    xs = z0.new_zeros(b, m, d)
    fs = z0.new_zeros(b, m, d)
    xs[:, 0], fs[:, 0] = z0, f(z0)
    residual = relative_residual(fs[:, 0], xs[:, 0]).max()
    k = 1
    if residual >= tol and max_iter > 1:
        xs[:, 1], fs[:, 1] = fs[:, 0], f(fs[:, 0])
        residual = relative_residual(fs[:, 1], xs[:, 1]).max()
        k = 2
    # bordered system [[0, 1^T], [1, G G^T + ridge I]] [nu, alpha] = [1, 0]
    system = z0.new_zeros(b, m + 1, m + 1)
    system[:, 0, 1:] = system[:, 1:, 0] = 1.0
    rhs = z0.new_zeros(b, m + 1, 1)
    rhs[:, 0] = 1.0
    while residual >= tol and k < max_iter:
        n = min(k, m)
        g = fs[:, :n] - xs[:, :n]
        gram = g @ g.transpose(1, 2)
        # ridge relative to the residuals' scale, so it regularises equally at every tolerance
        scale = gram.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-30)[:, None, None]
        system[:, 1:n + 1, 1:n + 1] = gram + ridge * scale * torch.eye(n, dtype=z0.dtype, device=z0.device)
        alpha = torch.linalg.solve(system[:, :n + 1, :n + 1], rhs[:, :n + 1])[:, 1:n + 1, 0]
        i = k % m
        xs[:, i] = beta * (alpha[:, None] @ fs[:, :n])[:, 0] + (1 - beta) * (alpha[:, None] @ xs[:, :n])[:, 0]
        fs[:, i] = f(xs[:, i])
        residual = relative_residual(fs[:, i], xs[:, i]).max()
        k += 1
    return fs[:, (k - 1) % m].clone(), SolverStats(iterations=k, residual=float(residual))
