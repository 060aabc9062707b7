"""Instance-tailored inference networks (tagging paper §4): fine-tune a copy of Ψ per input.

- :func:`tailored_logits`: ``--tailor-steps`` updates (``--tailor-optimizer``: SGD, or Adam)
  of a deep copy of an inference network on ``E(x, O(A_Ψ(x)))``, for any network the caller
  can run
  (``logits_of(copy) -> (B, T, V)``); the shared network is left unchanged.
- :func:`tailor`: the same for a tagging inference network (logits returned by its forward,
  mask from its ``padding_mask``).
- :class:`TailoringSolver` (``--inference tailored``): per sentence where the task gives
  ``Problem.sentence`` (tagging), else per batch (translation).
"""

import copy
from typing import Any, Callable

import torch
from torch import Tensor

from engine_plugin.energies.base import StructuredEnergy
from engine_plugin.solvers.checks import DivergedError, check_finite
from engine_plugin.solvers.registry import Problem, register_solver

DIVERGED_HINT = "Lower the step size (--tailor-lr) or the number of steps (--tailor-steps)."
TAILOR_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}


def tailored_logits(infnet: torch.nn.Module, logits_of: Callable[[torch.nn.Module], Tensor],
                    energy: StructuredEnergy, context: Any, mask: Tensor, steps: int, lr: float,
                    relaxation: str = "sx", optimizer: str = "sgd") -> Tensor:
    """Logits (B, T, V) of a copy of ``infnet`` after ``steps`` updates on the summed
    relaxed energies of this batch alone; ``infnet`` itself is left unchanged.

    Args:
        infnet: the shared inference network (deep-copied, in eval mode: no dropout).
        logits_of: runs a network like ``infnet`` on the batch: ``(B, T, V)`` logits.
        context: ``energy.condition`` of the batch.
        mask: (B, T) bool, True on real output positions.
        relaxation: operator for the energy's input slots and outputs.
        optimizer: ``sgd`` (plain steps of ``lr`` times the gradient) or ``adam`` (default
            betas; each weight moves by about ``lr`` per step).

    Raises:
        DivergedError: the tailored copy's logits or energies stopped being finite.
    """
    tailored = copy.deepcopy(infnet)
    tailored.eval()
    updates = TAILOR_OPTIMIZERS[optimizer](tailored.parameters(), lr=lr)
    with torch.enable_grad():
        for step in range(steps):
            updates.zero_grad()
            logits = logits_of(tailored)
            energies = energy.relaxed_energy(context, logits, mask, relaxation, relaxation)
            check_finite("tailored", step, logits, energies, DIVERGED_HINT)
            energies.sum().backward()
            updates.step()
    with torch.no_grad():
        logits = logits_of(tailored)
    check_finite("tailored", steps, logits, logits.new_zeros(logits.shape[0]), DIVERGED_HINT)
    return logits


def tailor(infnet, energy: StructuredEnergy, net_input: dict, steps: int, lr: float,
           relaxation: str = "sx") -> Tensor:
    """:func:`tailored_logits` of a tagging inference network (B, T, L) on ``net_input``.

    For instance-tailoring in the paper's sense pass one sentence at a time (B = 1): with
    B > 1 the copy is tailored to the batch.
    """
    return tailored_logits(infnet, lambda model: model(**net_input), energy,
                           energy.condition(net_input),
                           infnet.padding_mask(net_input["src_tokens"]), steps, lr, relaxation)


@register_solver("tailored")
class TailoringSolver:
    """The logits of a copy of the inference network tailored to each input."""

    needs_exact = False
    uses_infnet = True

    def solve(self, problem: Problem):
        """``(None, logits (B, T, V))``; one copy per sentence if ``problem.sentence``."""
        problem.require_infnet(self.name)
        if problem.sentence is None:
            return None, self.tailor(problem)
        rows = []
        for i in range(problem.mask.shape[0]):
            try:
                logits = self.tailor(problem.sentence(i))
            except DivergedError as error:
                error.rows = [i]
                raise
            rows.append(torch.nn.functional.pad(
                logits, (0, 0, 0, problem.mask.shape[1] - logits.shape[1])))
        return None, torch.cat(rows)

    @staticmethod
    def tailor(problem: Problem) -> Tensor:
        cfg = problem.cfg
        return tailored_logits(problem.infnet, problem.infnet_logits, problem.energy,
                               problem.context, problem.mask, cfg.tailor_steps, cfg.tailor_lr,
                               str(cfg.gd_relaxation),
                               str(getattr(cfg, "tailor_optimizer", "sgd")))  # older configs: sgd
