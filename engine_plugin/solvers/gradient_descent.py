"""Gradient descent over relaxed outputs (tagging paper §3): descend ``E(x, softmax(z))``.

- :func:`descend`: momentum descent on logits ``z`` (B, T, V) of one batch.
- :class:`GradientDescentSolver` (``--inference gd``): descent from ``--gd-init`` logits
  (zeros: the uniform distribution, or N(0, 1)); with ``--gd-oracle`` the best (steps, rate)
  pair of a grid per sentence, by the number of correct outputs, then by energy (the
  tagging paper's appendix: an upper bound on what tuning GD per sentence could give).
"""

from typing import Iterable, List, Optional

import torch
from torch import Tensor

from engine_plugin.energies.base import StructuredEnergy
from engine_plugin.solvers.checks import check_finite
from engine_plugin.solvers.registry import Problem, register_solver

DIVERGED_HINT = "Lower the step size (--gd-lr) or the number of steps (--gd-steps)."


def descend(energy: StructuredEnergy, context, mask: Tensor, init_logits: Tensor, steps: int,
            lr: float, momentum: float = 0.9, relaxation: str = "sx",
            snapshot_steps: Iterable[int] = (), solver: str = "gd") -> List[Tensor]:
    """Momentum gradient descent on the logits ``z`` of relaxed outputs.

    Each sentence's energy depends only on its own logits, so descending the batch sum moves
    every sentence as if it were alone.

    Args:
        energy: the frozen energy.
        context: ``energy.condition(net_input)``.
        mask: (B, T) bool.
        init_logits: (B, T, V) starting point (random, zeros or an infnet's logits).
        steps: number of updates N.
        lr: step size η (the paper's rates are large, 1 to 1e4).
        momentum: heavy-ball coefficient μ: ``v ← μ v + ∇E``, ``z ← z − η v``.
        relaxation: operator that maps z to the scored distribution (the paper: softmax).
        snapshot_steps: step counts (≤ steps, 0 = the start) at which to also return z.
        solver: the method named if the descent diverges.

    Returns:
        ``[z at each snapshot step (in the given order)..., final z]``, each (B, T, V).

    Raises:
        DivergedError: logits or energies stopped being finite (``lr`` far too large).
    """
    wanted = list(snapshot_steps)
    snapshots = {}
    z = init_logits.detach().clone().requires_grad_(True)
    velocity = torch.zeros_like(z)
    for step in range(steps + 1):
        if step in wanted:
            snapshots[step] = z.detach().clone()
        if step == steps:
            break
        with torch.enable_grad():
            energies = energy.relaxed_energy(context, z, mask, relaxation, relaxation)
            check_finite(solver, step, z, energies, DIVERGED_HINT)
            (grad,) = torch.autograd.grad(energies.sum(), z)
        with torch.no_grad():
            velocity.mul_(momentum).add_(grad)
            z.sub_(lr * velocity)
    check_finite(solver, steps, z, torch.zeros(z.shape[0], device=z.device), DIVERGED_HINT)
    return [snapshots[s] for s in wanted] + [z.detach()]


def initial_logits(shape, init: str, device, generator: Optional[torch.Generator] = None,
                   dtype=torch.float32) -> Tensor:
    """(B, T, V) start for GD: ``"zero"`` (uniform distribution) or ``"random"`` (N(0, 1))."""
    if init == "zero":
        return torch.zeros(shape, device=device, dtype=dtype)
    if init == "random":
        return torch.randn(shape, device=device, dtype=dtype, generator=generator)
    raise ValueError(f"unknown GD initialisation {init!r}: use zero or random")


def parse_grid(text: str, cast) -> List:
    """The values of a comma-separated grid option (``--gd-oracle-steps 5,10``)."""
    return [cast(float(x)) for x in str(text).split(",") if x.strip()]


def descend_problem(problem: Problem, init_logits: Tensor, solver: str) -> Tensor:
    """Final logits (B, T, V) of ``--gd-steps`` updates of :func:`descend` on ``problem``
    from ``init_logits`` (B, T, V)."""
    cfg = problem.cfg
    return descend(problem.energy, problem.context, problem.mask, init_logits, cfg.gd_steps,
                   cfg.gd_lr, cfg.gd_momentum, str(cfg.gd_relaxation), solver=solver)[-1]


@register_solver("gd")
class GradientDescentSolver:
    """Gradient descent on the energy from ``--gd-init`` logits (``--path`` is the energy)."""

    needs_exact = False
    uses_infnet = False

    def solve(self, problem: Problem):
        """``(None, logits (B, T, V))``, or with ``--gd-oracle`` ``(outputs (B, T), None)``."""
        init = initial_logits(problem.shape, str(problem.cfg.gd_init), problem.mask.device,
                              problem.generator)
        if problem.cfg.gd_oracle:
            return self.oracle(problem, init), None
        return None, descend_problem(problem, init, self.name)

    @staticmethod
    def oracle(problem: Problem, init: Tensor) -> Tensor:
        """Per sentence, the outputs (B, T) of the best (steps, rate) pair of the
        ``--gd-oracle-steps`` x ``--gd-oracle-lrs`` grid by correct outputs, then energy."""
        if problem.correct is None:
            raise ValueError("--gd-oracle picks steps by the gold outputs, which this task "
                             "does not give the solver: drop --gd-oracle")
        cfg, energy, context, mask = problem.cfg, problem.energy, problem.context, problem.mask
        steps = sorted(parse_grid(cfg.gd_oracle_steps, int))
        best_key, best = None, None
        for lr in parse_grid(cfg.gd_oracle_lrs, float):
            for z in descend(energy, context, mask, init, steps[-1], lr, cfg.gd_momentum,
                             str(cfg.gd_relaxation), snapshot_steps=steps)[:-1]:
                outputs = z.argmax(-1)
                correct = problem.correct(outputs).double()
                key = torch.stack([correct, -energy.discrete_energy(context, outputs,
                                                                    mask).double()], 1)
                if best_key is None:
                    best_key, best = key, outputs
                    continue
                better = (key[:, 0] > best_key[:, 0]) | (
                    (key[:, 0] == best_key[:, 0]) & (key[:, 1] > best_key[:, 1]))
                best_key = torch.where(better[:, None], key, best_key)
                best = torch.where(better[:, None], outputs, best)
        return best
