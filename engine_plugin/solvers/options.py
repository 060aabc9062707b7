"""The solver options both tasks share: ``--inference``, ``--gd-*`` and ``--tailor-*``.

``SequenceLabelingConfig`` and ``TranslationEnergyConfig`` inherit :class:`SolverConfig`,
so each option is declared once; a task changes only the default of ``--inference``
(:func:`inference_field`). :func:`~engine_plugin.solvers.checks.check_solver_settings`
validates them when a task is set up.
"""

from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from omegaconf import II

from engine_plugin.relaxations import OPERATORS
from engine_plugin.solvers.registry import SOLVERS
from engine_plugin.solvers.tailoring import TAILOR_OPTIMIZERS

INFERENCE_METHODS = tuple(SOLVERS)


def inference_field(default: str):
    """The ``--inference`` option with a task's default method."""
    return field(default=default, metadata={
        "help": "how fairseq-generate minimises the energy: viterbi (exact, CRF energies "
                "only), gd (gradient descent; --path is the energy for tagging, the NAT "
                "that proposes lengths for translation), infnet (the inference network "
                "--path), tailored (a copy of it fine-tuned on the energy per input), "
                "warmstart (gd from its logits); all but infnet and tagging's viterbi/gd "
                "measure against --energy-path"})


@dataclass
class SolverConfig(FairseqDataclass):
    inference: ChoiceEnum(INFERENCE_METHODS) = inference_field("infnet")
    gd_steps: int = field(default=20, metadata={"help": "gradient descent steps N"})
    gd_lr: float = field(default=1.0, metadata={"help": "gradient descent step size η"})
    gd_momentum: float = field(default=0.9, metadata={"help": "gradient descent momentum"})
    gd_init: ChoiceEnum(["zero", "random"]) = field(
        default="zero", metadata={"help": "start of gradient descent (not for warmstart)"}
    )
    gd_relaxation: ChoiceEnum(list(OPERATORS)) = field(
        default="sx", metadata={"help": "relaxation used by gd, warmstart and tailoring"}
    )
    gd_oracle: bool = field(
        default=False,
        metadata={"help": "gd: best (steps, rate) per sentence by gold accuracy (an oracle; "
                          "sequence_labeling only)"},
    )
    gd_oracle_steps: str = field(
        default="5,10,20,30,40,50,100,500,1000", metadata={"help": "oracle grid of N"}
    )
    gd_oracle_lrs: str = field(
        default="1e4,5e3,1e3,500,100,50,10,5,1", metadata={"help": "oracle grid of η"}
    )
    tailor_steps: int = field(
        default=5, metadata={"help": "tailoring steps per sentence (tagging) or batch "
                                     "(translation)"})
    tailor_lr: float = field(default=0.01, metadata={"help": "tailoring step size"})
    tailor_optimizer: ChoiceEnum(list(TAILOR_OPTIMIZERS)) = field(
        default="sgd", metadata={"help": "tailoring's optimiser: sgd (the tagging paper's) or "
                                         "adam (a step of about --tailor-lr per weight, "
                                         "whatever the scale of its gradient)"})
    seed: int = II("common.seed")
