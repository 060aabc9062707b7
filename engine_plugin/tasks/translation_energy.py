"""``translation_energy``: non-autoregressive translation trained against a frozen AR energy.

ENGINE (Tu et al., 2020): a NAT inference network (``cmlm_infnet``, ``bilstm_infnet``)
trained with ``--criterion energy_loss --energy-path TEACHER`` to minimise the energy of an
autoregressive teacher (any stock fairseq ``translation`` model), plus a local
cross-entropy and the length-prediction loss. The task is fairseq's ``translation_lev``
(same data, same NAT layout, same stock ``IterativeRefinementGenerator``) with the energy
hooks of :class:`~engine_plugin.tasks.energy_task.EnergyTaskMixin` and two decoding options.

Layouts (``n`` target tokens ``y``; the teacher's decoder-start symbol is EOS)::

    NAT (this task)       target [bos y_1 .. y_n eos]   source [bos x eos]
    teacher (translation) target [y_1 .. y_n eos]       source [x eos]
                          prev_output_tokens [eos y_1 .. y_n]

The infnet's logits at the ``n`` positions of ``y`` (NAT positions ``1 .. n``) are what the
energy scores; it adds the boundaries itself.

    fairseq-train BIN --user-dir engine_plugin --task translation_energy \\
        --arch cmlm_infnet --criterion energy_loss --energy-path TEACHER.pt \\
        --o1 sx --o2 st --noise full_mask ...
    fairseq-generate BIN --user-dir engine_plugin --task translation_energy --path INFNET.pt \\
        --iter-decode-max-iter 0 --iter-decode-with-beam 3 \\
        [--length-select energy --energy-path TEACHER.pt] [--oracle-length]
    fairseq-generate BIN --user-dir engine_plugin --task translation_energy --path INFNET.pt \\
        --energy-path TEACHER.pt --iter-decode-max-iter 0 --inference warmstart --gd-steps 10

``--inference`` (default ``infnet``: the NAT's own decode) takes the solvers of
``engine_plugin/solvers`` that need no exact minimiser: ``gd``, ``warmstart`` and
``tailored`` minimise the teacher energy at the NAT's last refinement step
(``engine_plugin/translation_generator.py``).
"""

import logging
from dataclasses import dataclass, field
from typing import Optional

import torch.nn.functional as F
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationTask
from fairseq.tasks.translation_lev import (
    NOISE_CHOICES,
    TranslationLevenshteinConfig,
    TranslationLevenshteinTask,
)

from engine_plugin.checkpoints import model_class_of
from engine_plugin.energies.translation import TranslationEnergy
from engine_plugin.solvers.checks import check_solver_settings
from engine_plugin.solvers.options import SolverConfig
from engine_plugin.solvers.registry import solver_for
from engine_plugin.tasks.energy_task import EnergyTaskMixin, InfnetOutput, energy_path_field
from engine_plugin.translation_generator import LengthSelectingGenerator, strip_nat_boundaries

logger = logging.getLogger(__name__)

LENGTH_SELECTION = ("avg_logprob", "energy")


@dataclass
class TranslationEnergyConfig(TranslationLevenshteinConfig, SolverConfig):
    noise: NOISE_CHOICES = field(
        default="full_mask",
        metadata={"help": "decoder input of training: full_mask (ENGINE: every target token "
                          "is <unk>), random_mask (CMLM's partial masking) or no_noise"},
    )
    energy_path: Optional[str] = energy_path_field()
    length_select: ChoiceEnum(LENGTH_SELECTION) = field(
        default="avg_logprob",
        metadata={"help": "how fairseq-generate picks among --iter-decode-with-beam lengths: "
                          "the infnet's average log-probability (fairseq's) or the lowest "
                          "teacher energy per token (needs --energy-path)"},
    )
    oracle_length: bool = field(
        default=False, metadata={"help": "decode with the reference target lengths"}
    )


@register_task("translation_energy", dataclass=TranslationEnergyConfig)
class TranslationEnergyTask(EnergyTaskMixin, TranslationLevenshteinTask):
    """fairseq's ``translation_lev`` whose NAT models can be trained against an AR energy."""

    cfg: TranslationEnergyConfig

    def __init__(self, cfg, src_dict, tgt_dict):
        check_solver_settings(cfg)
        super().__init__(cfg, src_dict, tgt_dict)

    def load_energy(self, path: str) -> TranslationEnergy:
        """Loads the teacher checkpoint ``path`` and checks that it uses our dictionaries.

        The teacher's dictionaries are read from the data directory it was trained on; if
        that directory is gone, from this task's (then a vocabulary mismatch shows as a
        checkpoint that does not fit them).

        Raises:
            ValueError: the dictionaries differ.
        """
        try:
            energy = TranslationEnergy.from_checkpoint(path)
        except FileNotFoundError as error:
            if error.filename is None:  # the checkpoint itself is missing
                raise
            logger.warning("teacher data directory unavailable (%s): reading the teacher's "
                           "dictionaries from %s", error.filename, self.cfg.data)
            try:
                energy = TranslationEnergy.from_checkpoint(
                    path, arg_overrides={"data": self.cfg.data})
            except RuntimeError as mismatch:
                raise ValueError(
                    f"--energy-path {path}: the teacher does not fit this task's "
                    f"dictionaries ({self.cfg.data}): {mismatch}"
                ) from None
        try:
            energy.check_dictionaries(self.src_dict, self.tgt_dict)
        except ValueError as mismatch:
            raise ValueError(f"--energy-path {path}: {mismatch}") from None
        return energy

    def build_model(self, cfg, from_checkpoint=False):
        """translation_lev's, for NAT models only (an AR teacher belongs in --energy-path)."""
        from fairseq.models.nat import FairseqNATModel

        arch, model_class = model_class_of(cfg)
        if model_class is not None and not issubclass(model_class, FairseqNATModel):
            raise ValueError(
                f"the checkpoint holds a {arch} model, but --task translation_energy trains "
                "and decodes non-autoregressive models (cmlm_infnet, bilstm_infnet, "
                "cmlm_transformer, ...); an autoregressive teacher goes in --energy-path"
            )
        return super().build_model(cfg, from_checkpoint)

    def infnet_forward(self, model, sample) -> InfnetOutput:
        """Runs a NAT model with the reference lengths on the ``--noise`` decoder input.

        Returns:
            logits (B, N, V) at the ``y`` positions of ``[bos y eos]`` (N = T - 2), their
            mask (B, N), gold ``y`` (B, N) and ``extra_losses["length"]``: the summed
            cross-entropy of the length prediction times the model's
            ``--length-loss-factor``.
        """
        if self.cfg.noise == "random_delete":
            raise ValueError("--noise random_delete changes the target length; the energy "
                             "scores the reference length: use full_mask (ENGINE)")
        target = sample["target"]
        prev_target = sample.get("prev_target")
        if prev_target is None:
            prev_target = self.inject_noise(target)
        net_input = sample["net_input"]
        out = model(net_input["src_tokens"], net_input["src_lengths"], prev_target, target)
        gold, mask = strip_nat_boundaries(target, self.tgt_dict.pad())
        length = out["length"]
        length_loss = F.cross_entropy(length["out"].float(), length["tgt"], reduction="sum")
        return InfnetOutput(out["word_ins"]["out"][:, 1:-1], mask, gold,
                            {"length": length["factor"] * length_loss})

    def valid_step(self, sample, model, criterion):
        """translation_lev's validation (loss on the ``--noise`` decoder input) plus, with
        ``--eval-bleu``, the dev BLEU of the stock generator, which translation_lev skips
        (there ``--best-checkpoint-metric bleu`` fails with ``KeyError: 'bleu'``).

        The generator is the one ``TranslationTask.build_model`` builds from
        ``--eval-bleu-args``, e.g. ``'{"iter_decode_max_iter": 0}'`` for one iteration
        (fairseq's default is 10).
        """
        sample["prev_target"] = self.inject_noise(sample["target"])
        return TranslationTask.valid_step(self, sample, model, criterion)

    def build_generator(self, models, args, **kwargs):
        """fairseq's ``IterativeRefinementGenerator``, extended with ``--length-select
        energy``, ``--oracle-length``, ``--inference gd|warmstart|tailored`` and the count
        of special symbols."""
        generator = super().build_generator(models, args, **kwargs)
        solver = solver_for(str(self.cfg.inference), "translation_energy",
                            exact_available=False)
        if solver.name == "infnet":  # the NAT's own decode
            solver = None
        elif self.cfg.gd_oracle:
            raise ValueError("--gd-oracle picks steps by gold labels (sequence_labeling); "
                             "translation_energy has no per-position gold to count: drop it")
        energy = None
        if str(self.cfg.length_select) == "energy" or solver is not None:
            if not self.cfg.energy_path:
                flag = (f"--inference {solver.name}" if solver is not None
                        else "--length-select energy")
                raise ValueError(f"{flag} needs --energy-path TEACHER_CHECKPOINT (the "
                                 "autoregressive teacher whose energy it uses)")
            device = next(models[0].parameters()).device
            energy = self.energy_for(self.cfg.energy_path).to(device)
        return LengthSelectingGenerator.extending(generator, self.cfg, energy, solver)
