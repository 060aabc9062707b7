"""Instance-tailored inference networks (tagging paper §4): fine-tune a copy of Ψ per input."""

import copy

import torch

from engine_plugin.energies.base import StructuredEnergy


def tailor(infnet, energy: StructuredEnergy, net_input: dict, steps: int, lr: float,
           relaxation: str = "sx"):
    """Logits (B, T, V) of a copy of ``infnet`` after ``steps`` SGD updates on
    ``E(x, O(A_Ψ(x)))`` for this batch alone; ``infnet`` itself is left unchanged.

    For instance-tailoring in the paper's sense pass one sentence at a time (B = 1): with
    B > 1 the copy is tailored to the batch.
    """
    tailored = copy.deepcopy(infnet)
    tailored.eval()  # no dropout: the same network the plain infnet uses at test time
    optimizer = torch.optim.SGD(tailored.parameters(), lr=lr)
    context = energy.condition(net_input)
    mask = tailored.padding_mask(net_input["src_tokens"])
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            value = energy.relaxed_energy(context, tailored(**net_input), mask, relaxation,
                                          relaxation).sum()
            value.backward()
            optimizer.step()
    with torch.no_grad():
        return tailored(**net_input)
