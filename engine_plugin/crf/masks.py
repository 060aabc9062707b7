"""Validation of the ``(B, T)`` masks that every CRF routine takes."""

from typing import Optional

from torch import Tensor
import torch


def check_mask(emissions: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Validates ``emissions`` (B, T, L) and returns a bool mask (B, T) (all True if None).

    Each mask row must be a non-empty prefix: sequences are left-aligned and position 0 is
    always real.
    """
    if emissions.dim() != 3:
        raise ValueError(f"emissions must have shape (B, T, L), got {tuple(emissions.shape)}")
    if mask is None:
        return emissions.new_ones(emissions.shape[:2], dtype=torch.bool)
    if mask.shape != emissions.shape[:2]:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match emissions {tuple(emissions.shape[:2])}"
        )
    mask = mask.bool()
    if emissions.shape[1] > 0 and not mask[:, 0].all():
        raise ValueError("every sequence needs at least one token: mask[:, 0] must be True")
    if (mask[:, 1:] & ~mask[:, :-1]).any():
        raise ValueError("mask rows must be contiguous prefixes (left-aligned sequences)")
    return mask


def last_positions(mask: Tensor) -> Tensor:
    """Index of the last real token of each sequence, (B,) long, from a valid mask (B, T)."""
    return mask.sum(1) - 1


def reversed_index(last: Tensor, length: int) -> Tensor:
    """``(B, T)`` index ``last[b] - k`` (clamped at 0): gathering position ``last[b] - k``
    at column ``k`` aligns sequences at their ends. On real positions it is its own
    inverse, so the same gather maps reversed-aligned results back."""
    return (last.unsqueeze(1) - torch.arange(length, device=last.device)).clamp_(min=0)
