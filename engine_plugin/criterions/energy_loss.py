"""``energy_loss``: train an inference network against a frozen energy (both papers' §4/§3).

    loss = w · Σ_x E_Θ(x, O(A_Ψ(x)))  +  λ_t · Σ_x CE(y_gold, A_Ψ(x))  (+ the model's extra
           losses, e.g. length prediction for translation)

with ``λ_t = λ · exp(−r · t)`` at epoch ``t`` (``--ce-anneal-rate r``; the tagging paper
uses r = 0.01). ``--energy-weight 0`` gives the local baseline: the same model trained by
cross-entropy alone. The task supplies the energy (``task.load_energy``) and runs the model
(``task.infnet_forward``), so the same criterion trains tagging and translation infnets.

The energy is loaded once, frozen, and kept as a plain attribute (not a submodule): it is
never optimised, saved in the infnet's checkpoints or wrapped by DDP.
"""

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from fairseq import metrics
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from engine_plugin.relaxations import OPERATORS
from engine_plugin.tasks.energy_task import EnergyTaskMixin, energy_path_field

OPERATOR_CHOICES = ChoiceEnum(list(OPERATORS))


@dataclass
class EnergyLossConfig(FairseqDataclass):
    energy_path: Optional[str] = energy_path_field()
    energy_weight: float = field(
        default=1.0, metadata={"help": "weight w of the energy term; 0 = local baseline"}
    )
    ce_weight: float = field(
        default=1.0, metadata={"help": "weight λ of the local cross-entropy term"}
    )
    ce_anneal_rate: float = field(
        default=0.0, metadata={"help": "λ_t = λ·exp(-rate·epoch); the tagging paper uses 0.01"}
    )
    label_smoothing: float = field(
        default=0.0, metadata={"help": "label smoothing of the cross-entropy term"}
    )
    o1: OPERATOR_CHOICES = field(
        default="sx", metadata={"help": "relaxation of the energy's inputs (ENGINE's O1)"}
    )
    o2: OPERATOR_CHOICES = field(
        default="sx", metadata={"help": "relaxation of the energy's outputs (ENGINE's O2)"}
    )
    normalize_by: ChoiceEnum(["sentences", "tokens"]) = field(
        default="sentences",
        metadata={"help": "divide the summed loss by the number of sentences (default) or of "
                          "output tokens (the ENGINE authors' released code) before each "
                          "update; logged values stay per sentence"},
    )
    log_train_energy: bool = field(
        default=False,
        metadata={"help": "also compute, at training steps, the energies the loss does not "
                          "need (the discrete energy; the relaxed one under --energy-weight "
                          "0), for the training log: a frozen-energy forward more per step. "
                          "Validation always logs both"},
    )


@register_criterion("energy_loss", dataclass=EnergyLossConfig)
class EnergyLossCriterion(FairseqCriterion):
    def __init__(self, cfg: EnergyLossConfig, task):
        super().__init__(task)
        if not isinstance(task, EnergyTaskMixin):
            raise ValueError(
                f"--criterion energy_loss needs a task that provides an energy "
                f"(sequence_labeling, translation_energy), not {type(task).__name__}"
            )
        self.cfg = cfg
        if cfg.energy_path:
            self.energy = task.energy_for(cfg.energy_path)
        elif cfg.energy_weight != 0:
            raise ValueError("--criterion energy_loss needs --energy-path (or --energy-weight 0)")
        else:
            self.energy = None
        self._energy_device = torch.device("cpu")

    def ce_weight(self) -> float:
        return self.cfg.ce_weight * math.exp(-self.cfg.ce_anneal_rate * self.task.epoch)

    def forward(self, model, sample, reduce=True):
        out = self.task.infnet_forward(model, sample)
        mask = out.mask
        lprobs = F.log_softmax(out.logits.float(), dim=-1)
        gold = out.gold.masked_fill(~mask, 0)
        ce = F.cross_entropy(lprobs.transpose(1, 2), gold, reduction="none",
                             label_smoothing=self.cfg.label_smoothing)
        ce = ce.masked_fill(~mask, 0.0).sum()
        loss = self.ce_weight() * ce + sum(out.extra_losses.values())
        log = {
            "ce": ce.data,
            "ntokens": int(mask.sum()),
            "nsentences": sample["nsentences"],
            "sample_size": self.sample_size(sample["nsentences"], mask),
            "n_correct": int(((out.logits.argmax(-1) == gold) & mask).sum()),
        }
        for name, value in out.extra_losses.items():
            log[name] = value.data
        if self.energy is not None:
            loss = loss + self._energy_terms(sample, out, log, log_energies=not model.training
                                             or self.cfg.log_train_energy)
        log["loss"] = loss.data
        return loss, log["sample_size"], log

    def _energy_terms(self, sample, out, log, log_energies: bool):
        """``w · Σ_x E(x, O(A(x)))``, the energy term of the loss (0 under --energy-weight
        0), from ``out.logits`` (B, T, V) over ``out.mask`` (B, T). With ``log_energies``, the
        relaxed and the discrete (argmax) energies are also written to ``log``; without,
        only what the loss needs is computed (no teacher forward at all under weight 0)."""
        train_energy = self.cfg.energy_weight != 0
        if not (train_energy or log_energies):
            return 0.0
        if out.logits.device != self._energy_device:
            self.energy.to(out.logits.device)
            self._energy_device = out.logits.device
        context = self.energy.condition(sample["net_input"])
        with torch.set_grad_enabled(train_energy and torch.is_grad_enabled()):
            relaxed = self.energy.relaxed_energy(context, out.logits, out.mask, self.cfg.o1,
                                                 self.cfg.o2).sum()
        log["energy"] = relaxed.data
        if log_energies:
            with torch.no_grad():
                discrete = self.energy.discrete_energy(context, out.logits.argmax(-1), out.mask)
            log["energy_discrete"] = discrete.sum().data
        return self.cfg.energy_weight * relaxed if train_energy else 0.0

    def sample_size(self, sentences: int, mask) -> int:
        """What fairseq divides the summed loss by: sentences, or real output tokens of
        ``mask`` (B, T)."""
        return int(mask.sum()) if self.cfg.normalize_by == "tokens" else sentences

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        sentences = sum(log.get("nsentences", 0) for log in logging_outputs)
        tokens = sum(log.get("ntokens", 0) for log in logging_outputs)
        keys = {k for log in logging_outputs for k in log} - {
            "sample_size", "ntokens", "nsentences", "n_correct"}
        for key in sorted(keys):
            total = sum(log.get(key, 0) for log in logging_outputs)
            metrics.log_scalar(key, total / max(sentences, 1), sentences, round=3)
        correct = sum(log.get("n_correct", 0) for log in logging_outputs)
        metrics.log_scalar("acc", 100.0 * correct / max(tokens, 1), tokens, round=2)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True
