"""The tagging energy: a frozen BLSTM-CRF(+) (``blstm_crf``) checkpoint."""

from typing import NamedTuple

import torch
from torch import Tensor

from engine_plugin.checkpoints import freeze, load_frozen_model, weights_digest
from engine_plugin.energies.base import StructuredEnergy
from engine_plugin.models.blstm_crf import BLSTMCRFModel
from engine_plugin.relaxations import relax


class CRFContext(NamedTuple):
    emissions: Tensor  # (B, T, L)


class CRFEnergy(StructuredEnergy):
    """``E(x, y) = CRF(emissions(x), y)`` over ``L`` labels.

    A CRF has no input slots (it does not condition on its own outputs), so only ``o2`` is
    used: unary and pairwise terms score ``O2(z)``.
    """

    def __init__(self, model):
        self.model = freeze(model)

    @classmethod
    def from_checkpoint(cls, path: str, task) -> "CRFEnergy":
        """Loads a ``blstm_crf`` checkpoint for ``task``; its dictionaries must match the task's.

        Raises:
            ValueError: ``path`` is not a checkpoint of a ``blstm_crf`` energy, or it was
                trained with other dictionaries; the message names ``path``.
        """
        model, _, _ = load_frozen_model(
            path, task=task, accepts=lambda model_class: issubclass(model_class, BLSTMCRFModel),
            needed="a CRF energy: pass the checkpoint of a blstm_crf/blstm_crf_plus model "
                   "as --energy-path")
        return cls(model)

    def weights_digest(self) -> str:
        return weights_digest(self.model)

    @property
    def num_labels(self) -> int:
        return self.model.crf.num_labels

    def to(self, device) -> "CRFEnergy":
        self.model.to(device)
        return self

    @torch.no_grad()
    def condition(self, net_input) -> CRFContext:
        return CRFContext(self.model(**net_input))

    def relaxed_energy(self, context, logits, mask, o1="sx", o2="sx", generator=None):
        return self.model.crf.energy(context.emissions, relax(logits, o2, generator), mask)

    def discrete_energy(self, context, outputs, mask):
        return self.model.crf.energy(context.emissions, outputs, mask)

    def exact_minimum(self, context, mask):
        return self.model.crf.viterbi(context.emissions, mask)
