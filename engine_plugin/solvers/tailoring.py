"""Instance-tailored inference networks (tagging paper §4): fine-tune a copy of Ψ per input."""

import copy

import torch

from engine_plugin.energies.base import StructuredEnergy
from engine_plugin.solvers.checks import check_finite

DIVERGED_HINT = "Lower the step size (--tailor-lr) or the number of steps (--tailor-steps)."


def tailor(infnet, energy: StructuredEnergy, net_input: dict, steps: int, lr: float,
           relaxation: str = "sx"):
    """Logits (B, T, V) of a copy of ``infnet`` after ``steps`` SGD updates on
    ``E(x, O(A_Ψ(x)))`` for this batch alone; ``infnet`` itself is left unchanged.

    For instance-tailoring in the paper's sense pass one sentence at a time (B = 1): with
    B > 1 the copy is tailored to the batch.

    Raises:
        DivergedError: the tailored copy's logits or energies stopped being finite.
    """
    tailored = copy.deepcopy(infnet)
    tailored.eval()  # no dropout: the same network the plain infnet uses at test time
    optimizer = torch.optim.SGD(tailored.parameters(), lr=lr)
    context = energy.condition(net_input)
    mask = tailored.padding_mask(net_input["src_tokens"])
    with torch.enable_grad():
        for step in range(steps):
            optimizer.zero_grad()
            logits = tailored(**net_input)
            energies = energy.relaxed_energy(context, logits, mask, relaxation, relaxation)
            check_finite("tailored", step, logits, energies, DIVERGED_HINT)
            energies.sum().backward()
            optimizer.step()
    with torch.no_grad():
        logits = tailored(**net_input)
    check_finite("tailored", steps, logits, torch.zeros(logits.shape[0]), DIVERGED_HINT)
    return logits
