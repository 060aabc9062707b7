"""Allowed label transitions of chunking schemes (BIO / IOB2, BIOES), from the label names.

``label_constraints(names)`` returns ``LabelConstraints(transitions (L, L), start (L,),
end (L,))`` bool tensors, True where allowed (``transitions[i, j]``: label ``j`` may follow
label ``i``). Decoders take them as ``constraints=`` and only return allowed paths.

Detection: every name is ``O`` or ``P-TYPE`` with a prefix ``P`` in ``B I`` (BIO, read as
IOB2: a chunk always opens with ``B-``) or in ``B I E S`` (BIOES; ``L``/``U`` of BILOU are
read as ``E``/``S``). Any other label set (POS tags, a ``*`` bucket...) allows everything.
IOB1 data (chunks may open with ``I-``) should be converted first
(``scripts/conll_to_fairseq.py --bioes``): as IOB2 its ``I-`` openings would be forbidden.
"""

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

_BILOU = {"L": "E", "U": "S"}


class LabelConstraints(NamedTuple):
    transitions: Tensor  # (L, L) bool, [from, to]
    start: Tensor  # (L,) bool: may open a sentence
    end: Tensor  # (L,) bool: may close a sentence


def _parse(names: Sequence[str]) -> Optional[List[Tuple[str, str]]]:
    """(prefix, type) per label, ``("O", "")`` for O; None if a name fits no scheme."""
    parsed = []
    for name in names:
        if name == "O":
            parsed.append(("O", ""))
            continue
        prefix, sep, typ = name.partition("-")
        prefix = _BILOU.get(prefix, prefix)
        if not sep or not typ or prefix not in ("B", "I", "E", "S"):
            return None
        parsed.append((prefix, typ))
    return parsed


def detect_scheme(names: Sequence[str]) -> str:
    """``"bioes"``, ``"bio"`` or ``"none"`` for a list of label names."""
    parsed = _parse(names)
    prefixes = {p for p, _ in parsed} if parsed else set()
    if not prefixes - {"O"}:
        return "none"
    return "bioes" if prefixes & {"E", "S"} else "bio"


def _allowed(prev: Tuple[str, str], nxt: Tuple[str, str], scheme: str) -> bool:
    """May label ``nxt`` follow ``prev``? (labels as (prefix, type))."""
    (p, pt), (n, nt) = prev, nxt
    inside = p in ("B", "I")  # a chunk is open after prev
    if scheme == "bio":
        return n != "I" or (inside and pt == nt)
    if n in ("I", "E"):
        return inside and pt == nt
    return not inside


def label_constraints(label_names: Sequence[str]) -> LabelConstraints:
    """Allowed transitions, starts and ends of the scheme detected from ``label_names``.

    Returns bool tensors ``transitions (L, L)``, ``start (L,)``, ``end (L,)``; all True when
    the names are neither BIO nor BIOES.
    """
    names = list(label_names)
    if not names:
        raise ValueError("label_constraints needs at least one label name")
    L = len(names)
    scheme = detect_scheme(names)
    if scheme == "none":
        return LabelConstraints(torch.ones(L, L, dtype=torch.bool),
                                torch.ones(L, dtype=torch.bool), torch.ones(L, dtype=torch.bool))
    parsed = _parse(names)
    transitions = torch.tensor([[_allowed(a, b, scheme) for b in parsed] for a in parsed])
    start = torch.tensor([p not in ("I", "E") for p, _ in parsed])
    end = torch.tensor([scheme == "bio" or p not in ("B", "I") for p, _ in parsed])
    return LabelConstraints(transitions, start, end)


def check_constraints(constraints, num_labels: int, device) -> LabelConstraints:
    """Validates ``(transitions, start, end)`` for ``num_labels`` labels; bool, on ``device``."""
    if len(constraints) != 3:
        raise ValueError("constraints must be (transitions (L, L), start (L,), end (L,)) "
                         "as returned by label_constraints")
    transitions, start, end = (torch.as_tensor(c, device=device).bool() for c in constraints)
    L = num_labels
    if transitions.shape != (L, L) or start.shape != (L,) or end.shape != (L,):
        raise ValueError(
            f"constraints for {L} labels need shapes ({L}, {L}), ({L},), ({L},); got "
            f"{tuple(transitions.shape)}, {tuple(start.shape)}, {tuple(end.shape)}"
        )
    return LabelConstraints(transitions, start, end)


def constrained_scores(transitions: Tensor, start: Tensor, end: Tensor,
                       constraints: Optional[LabelConstraints]):
    """CRF scores (``(L, L)``, ``(L,)``, ``(L,)``) with forbidden entries set to ``-inf``."""
    if constraints is None:
        return transitions, start, end
    forbid = float("-inf")
    return (transitions.masked_fill(~constraints.transitions, forbid),
            start.masked_fill(~constraints.start, forbid),
            end.masked_fill(~constraints.end, forbid))
