"""Validation of the ``(B, T)`` masks of right-padded sequences of score vectors, shared by
the CRF (emissions ``(B, T, L)``) and the translation energy (distributions ``(B, T, V)``)."""

from typing import Optional

import torch
from torch import Tensor


def check_mask(scores: Tensor, mask: Optional[Tensor], name: str) -> Tensor:
    """Validates ``scores`` (B, T, K) and returns a bool mask (B, T) (all True if None).

    Each mask row must be a non-empty prefix: sequences are left-aligned and position 0 is
    always real. ``name`` names ``scores`` in the error messages (e.g. ``"emissions"``).

    Raises:
        ValueError: ``scores`` is not 3-dimensional, or ``mask`` has another shape than
            ``(B, T)``, an empty row or a row that is not a prefix.
    """
    if scores.dim() != 3:
        raise ValueError(f"{name} must have shape (B, T, K), got {tuple(scores.shape)}")
    if mask is None:
        return scores.new_ones(scores.shape[:2], dtype=torch.bool)
    if mask.shape != scores.shape[:2]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match {name} {tuple(scores.shape[:2])}"
        )
    mask = mask.bool()
    if scores.shape[1] > 0 and not mask[:, 0].all():
        raise ValueError(f"every sequence of {name} needs at least one token: "
                         "mask[:, 0] must be True")
    if (mask[:, 1:] & ~mask[:, :-1]).any():
        raise ValueError(f"the mask of {name} must have rows that are contiguous prefixes "
                         "(left-aligned sequences)")
    return mask
