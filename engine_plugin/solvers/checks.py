"""Guards that stop a solver from returning an argmax over garbage.

- :func:`check_solver_settings` refuses step sizes that are not finite and positive and
  negative step counts, when the task is set up (before any model is loaded).
- :func:`check_finite` stops a descent whose logits or energies stopped being finite (a
  step size far too large), with :class:`DivergedError` naming the rows of the batch.
"""

import math
from typing import List, Sequence

import torch
from torch import Tensor


class DivergedError(FloatingPointError):
    """Non-finite logits or energies during a descent.

    Attributes:
        solver: the ``--inference`` method (``gd``, ``warmstart``, ``tailored``).
        step: the update after which the values were not finite (0 = the start).
        rows: indices, in the batch the solver was given, of the sentences concerned.
    """

    def __init__(self, solver: str, step: int, rows: List[int], hint: str = "",
                 names: Sequence[str] = ()):
        self.solver, self.step, self.rows, self.hint = solver, step, rows, hint
        names = ", ".join(names or [f"row {r} of the batch" for r in rows])
        super().__init__(f"--inference {solver} diverged: non-finite logits or energy after "
                         f"step {step} for sentence(s) {names}. {hint}".strip())

    def named(self, ids: Sequence[int]) -> "DivergedError":
        """The same error naming the sentences by their ids in the data set, ``ids[row]``
        (each once: several rows may hold one sentence, e.g. a translation length beam)."""
        return DivergedError(self.solver, self.step, self.rows, self.hint,
                             list(dict.fromkeys(f"id {ids[r]}" for r in self.rows)))


def check_finite(solver: str, step: int, logits: Tensor, energies: Tensor, hint: str = ""):
    """Raises :class:`DivergedError` unless every row of ``logits`` (B, T, V) and every
    energy (B,) is finite."""
    bad = ~torch.isfinite(logits).flatten(1).all(1) | ~torch.isfinite(energies)
    if bad.any():
        raise DivergedError(solver, step, bad.nonzero().flatten().tolist(), hint)


# the largest step size the float32 parameters and logits can be multiplied by
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _number(flag: str, value, minimum: float, strict: bool, integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (
        value > minimum if strict else value >= minimum) and abs(value) <= FLOAT32_MAX
    if integer:
        ok = ok and float(value) == int(value)
    if not ok:
        bound = f"{'>' if strict else '>='} {minimum:g}"
        kind = "a whole number" if integer else f"a finite number (float32: <= {FLOAT32_MAX:.3g})"
        raise ValueError(f"{flag} must be {kind} {bound}, got {value!r}")


def _grid(flag: str, text: str, minimum: float, strict: bool, integer: bool) -> None:
    try:
        values = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{flag} needs at least one value, got {text!r}")
    for value in values:
        _number(flag, value, minimum, strict, integer)


def check_solver_settings(cfg) -> None:
    """Raises ``ValueError`` naming the flag for an unusable solver setting in ``cfg``
    (the ``gd_*`` and ``tailor_*`` options of a task config)."""
    _number("--gd-steps", cfg.gd_steps, 0, strict=False, integer=True)
    _number("--gd-lr", cfg.gd_lr, 0, strict=True)
    _number("--gd-momentum", cfg.gd_momentum, 0, strict=False)
    if cfg.gd_momentum >= 1:
        raise ValueError(f"--gd-momentum must be below 1, got {cfg.gd_momentum!r}")
    _number("--tailor-steps", cfg.tailor_steps, 0, strict=False, integer=True)
    _number("--tailor-lr", cfg.tailor_lr, 0, strict=True)
    _grid("--gd-oracle-steps", cfg.gd_oracle_steps, 0, strict=False, integer=True)
    _grid("--gd-oracle-lrs", cfg.gd_oracle_lrs, 0, strict=True, integer=False)
