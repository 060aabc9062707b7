"""What a task provides so that one ``energy_loss`` criterion trains its inference networks."""

import logging
from dataclasses import field
from typing import Dict, NamedTuple

from torch import Tensor

from engine_plugin.energies.base import StructuredEnergy

logger = logging.getLogger(__name__)

ENERGY_PATH_HELP = (
    "checkpoint of the frozen energy: a blstm_crf model (--task sequence_labeling) or an "
    "autoregressive translation model (--task translation_energy). Training: what "
    "--criterion energy_loss trains the inference network against. Generation: what an "
    "inference network's outputs are scored, tailored and warm-started against "
    "(sequence_labeling), or what --length-select energy ranks lengths by and --inference "
    "gd|warmstart|tailored minimise (translation_energy)"
)


def energy_path_field():
    """The ``--energy-path`` option of both tasks and of the ``energy_loss`` criterion.

    fairseq adds the options of the task, then of the criterion, to one parser, and keeps the
    first declaration of a repeated option (its help included): the three share this one.
    """
    return field(default=None, metadata={"help": ENERGY_PATH_HELP})


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

    def energy_for(self, path: str) -> StructuredEnergy:
        """:meth:`load_energy`, remembered in the task state that fairseq saves with every
        checkpoint (path and weights digest), with a warning when an inference network
        whose checkpoint was loaded into this task was trained against another energy."""
        trained = self.state.state_dict.get("trained_energy")
        energy = self.load_energy(path)
        digest = energy.weights_digest()
        if trained and trained["path"] != path and trained["digest"] != digest:
            logger.warning(
                "the inference network was trained against the energy %s (weights %s), "
                "not against --energy-path %s (weights %s): energies, search errors and "
                "tailoring are measured against the latter", trained["path"],
                trained["digest"], path, digest)
        self.state.merge_state_dict({"trained_energy": {"path": path, "digest": digest}})
        return energy

    def infnet_forward(self, model, sample) -> InfnetOutput:
        """Runs the inference network ``model`` on ``sample``."""
        raise NotImplementedError

    def begin_epoch(self, epoch, model):
        super().begin_epoch(epoch, model)
        self.epoch = epoch
