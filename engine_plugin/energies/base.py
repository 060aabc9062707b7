"""The interface every frozen energy offers to inference networks and solvers.

An energy scores output sequences of ``T`` positions with ``V`` choices each (labels for
tagging, target words for translation). Inference methods produce logits ``z`` (B, T, V);
the energy turns them into the distributions it scores with the relaxation operators of
``engine_plugin.relaxations`` (O1 for its input slots, O2 for its outputs).
"""

from abc import ABC, abstractmethod
from typing import Any, Optional, Tuple

import torch
from torch import Tensor


class StructuredEnergy(ABC):
    """A frozen energy ``E_Θ(x, y)``: eval mode, no parameter gradients.

    Implementations are plain Python objects, never ``nn.Module`` attributes of a trained
    model, so that fairseq does not optimise, save or DDP-wrap them.
    """

    @abstractmethod
    def condition(self, net_input: dict) -> Any:
        """Computes once what depends on ``x`` only (features, encoder states).

        ``net_input`` is the batch's ``sample["net_input"]``.
        """

    @abstractmethod
    def relaxed_energy(self, context: Any, logits: Tensor, mask: Tensor, o1: str = "sx",
                       o2: str = "sx", generator: Optional[torch.Generator] = None) -> Tensor:
        """(B,) energies of the relaxed outputs ``O(logits)``, differentiable in ``logits``.

        Args:
            context: from :meth:`condition`.
            logits: (B, T, V).
            mask: (B, T) bool, True on real output positions.
            o1, o2: relaxation operators for the energy's input slots and outputs.
            generator: random source of the Gumbel operators.
        """

    @abstractmethod
    def discrete_energy(self, context: Any, outputs: Tensor, mask: Tensor) -> Tensor:
        """(B,) energies of discrete outputs (B, T) with values in [0, V)."""

    def exact_minimum(self, context: Any, mask: Tensor) -> Optional[Tuple[Tensor, Tensor]]:
        """``(outputs (B, T), energies (B,))`` of the exact minimiser, or None if the energy
        has no exact solver (search error is then not defined)."""
        return None

    def weights_digest(self) -> str:
        """A short digest of the frozen model's weights (tells two energies apart)."""
        raise NotImplementedError

    def to(self, device) -> "StructuredEnergy":
        """Moves the frozen model; returns self."""
        return self
