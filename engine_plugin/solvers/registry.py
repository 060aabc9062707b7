"""The ``--inference`` registry: solver classes by name, and the problem they solve.

A solver sees a :class:`Problem` only: a frozen energy (``energies/base.py``), the mask of
the output positions, and, where the task has one, a way to run its inference network.
The same solver classes therefore serve ``sequence_labeling`` (a CRF energy over ``L``
labels) and ``translation_energy`` (a teacher energy over ``V`` target words).

Shapes: ``B`` rows, ``T`` output positions, ``V`` choices per position.
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from engine_plugin.energies.base import StructuredEnergy

SOLVERS: Dict[str, type] = {}
"""``--inference`` name -> solver class, in registration order."""

EXACT_SOLVER_NEEDS = "an energy with an exact minimiser (the CRF of --task sequence_labeling)"


def register_solver(name: str):
    """Class decorator: registers a solver class as ``--inference name``.

    The class sets ``needs_exact`` (it calls ``energy.exact_minimum``) and ``uses_infnet``
    (``--path`` is an inference network, not the energy) and defines
    ``solve(problem) -> (outputs (B, T) long or None, logits (B, T, V) or None)``: the
    discrete outputs, or the relaxed logits whose argmax they are.
    """
    def register(cls):
        if name in SOLVERS:
            raise ValueError(f"--inference {name} is registered twice")
        cls.name = name
        SOLVERS[name] = cls
        return cls

    return register


def solver_for(name: str, task_name: str, exact_available: bool) -> type:
    """The solver class of ``--inference name`` for the task ``task_name``.

    Args:
        exact_available: the task's energy has an exact minimiser (``exact_minimum``).

    Raises:
        ValueError: ``name`` is not registered, or needs an exact minimiser the task's
            energy lacks; the message names the valid choices.
    """
    usable = [n for n, cls in SOLVERS.items() if exact_available or not cls.needs_exact]
    choices = ", ".join(usable)
    if name not in SOLVERS:
        raise ValueError(f"--inference {name}: unknown; choose from {choices}")
    if SOLVERS[name].needs_exact and not exact_available:
        raise ValueError(f"--inference {name} needs {EXACT_SOLVER_NEEDS}; --task {task_name} "
                         f"has none: choose from {choices}")
    return SOLVERS[name]


@dataclass
class Problem:
    """One batch of ``argmin_y E(x, y)`` as a solver sees it.

    Attributes:
        energy: the frozen energy.
        condition: computes ``energy.condition(...)`` of the batch; called once, on the
            first use of :attr:`context` (so methods that do not need it do not pay for it).
        mask: (B, T) bool, True on real output positions.
        num_choices: V, the choices per position.
        cfg: the task config (``gd_*``, ``tailor_*`` options of ``SolverConfig``).
        infnet: the inference network, or None when ``--path`` is the energy.
        infnet_logits: ``infnet_logits(model) -> (B, T, V)`` runs ``infnet`` or a copy of it
            (tailoring) on the batch; None without an inference network.
        generator: random source of ``--gd-init random``.
        correct: ``correct(outputs (B, T)) -> (B,)`` number of gold outputs, for
            ``--gd-oracle``; None when the task has no gold outputs to compare with.
        constraints: allowed label paths of an exact solver (``--constrain-labels``).
        sentence: ``sentence(i) -> Problem`` of row ``i`` alone (unpadded): tailoring then
            adapts a copy per sentence, as in the tagging paper; None tailors per batch.
    """

    energy: StructuredEnergy
    condition: Callable[[], Any]
    mask: Tensor
    num_choices: int
    cfg: Any
    infnet: Optional[torch.nn.Module] = None
    infnet_logits: Optional[Callable[[torch.nn.Module], Tensor]] = None
    generator: Optional[torch.Generator] = None
    correct: Optional[Callable[[Tensor], Tensor]] = None
    constraints: Any = None
    sentence: Optional[Callable[[int], "Problem"]] = None
    _context: Any = field(default=None, init=False, repr=False)

    @property
    def context(self) -> Any:
        """``energy.condition`` of the batch, computed on first use."""
        if self._context is None:
            self._context = self.condition()
        return self._context

    @property
    def shape(self) -> Tuple[int, int, int]:
        """(B, T, V) of the logits a solver returns."""
        return (*self.mask.shape, self.num_choices)

    def require_infnet(self, solver: str) -> None:
        """Raises ``ValueError`` when there is no inference network to run."""
        if self.infnet is None or self.infnet_logits is None:
            raise ValueError(f"--inference {solver} runs an inference network: pass it as "
                             "--path (and the energy as --energy-path)")
