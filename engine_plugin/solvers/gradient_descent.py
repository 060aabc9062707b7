"""Gradient descent over relaxed outputs (tagging paper §3): descend ``E(x, softmax(z))``."""

from typing import Iterable, List, Optional

import torch
from torch import Tensor

from engine_plugin.energies.base import StructuredEnergy
from engine_plugin.solvers.checks import check_finite

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
