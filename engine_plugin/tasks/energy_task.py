"""What a task provides so that one ``energy_loss`` criterion trains its inference networks."""

from typing import Dict, NamedTuple

from torch import Tensor

from engine_plugin.energies.base import StructuredEnergy


class InfnetOutput(NamedTuple):
    """An inference network's output on a batch, in the energy's output space.

    logits: (B, T, V) scores of the V choices at each output position.
    mask: (B, T) bool, True on real output positions.
    gold: (B, T) long reference outputs in [0, V) (any value on padded positions).
    extra_losses: named summed losses the model adds (e.g. ``length`` for translation).
    """

    logits: Tensor
    mask: Tensor
    gold: Tensor
    extra_losses: Dict[str, Tensor]


class EnergyTaskMixin:
    """Mixin for fairseq tasks whose models can be trained against a frozen energy."""

    epoch = 1

    def load_energy(self, path: str) -> StructuredEnergy:
        """Loads the frozen energy from a checkpoint and checks its dictionaries."""
        raise NotImplementedError

    def infnet_forward(self, model, sample) -> InfnetOutput:
        """Runs the inference network ``model`` on ``sample``."""
        raise NotImplementedError

    def begin_epoch(self, epoch, model):
        super().begin_epoch(epoch, model)
        self.epoch = epoch
