"""Positions of valid ``(B, T)`` prefix masks (see :func:`engine_plugin.masks.check_mask`):
the last real position of each sequence, and the index that aligns sequences at their ends."""

import torch
from torch import Tensor


def last_positions(mask: Tensor) -> Tensor:
    """Index of the last real token of each sequence, (B,) long, from a valid mask (B, T)."""
    return mask.sum(1) - 1


def reversed_index(last: Tensor, length: int) -> Tensor:
    """``(B, T)`` index ``last[b] - k`` (clamped at 0): gathering position ``last[b] - k``
    at column ``k`` aligns sequences at their ends. On real positions it is its own
    inverse, so the same gather maps reversed-aligned results back."""
    return (last.unsqueeze(1) - torch.arange(length, device=last.device)).clamp_(min=0)
