"""k-best Viterbi: the max-plus recursion keeping the K best scores per label.

State at position t: ``scores (B, L, K)``, the K best path scores ending in each label, in
decreasing order. A step adds the transitions to every (previous label, rank) pair and keeps
the K best of the ``L * K`` candidates per label (``topk``), with backpointers into them.
Padding positions carry the state over unchanged (identity backpointers), so the backtrace
runs from position T - 1 for every sequence.
"""

from typing import Tuple

import torch
from torch import Tensor


def _step(scores: Tensor, transitions: Tensor, emission: Tensor, k: int):
    """scores (B, L, K) -> new scores (B, L, K), backpointers (B, L, K) into ``L * K``."""
    B, L, K = scores.shape
    # candidates[b, j, i * K + r] = scores[b, i, r] + W[i, j]
    candidates = (scores.unsqueeze(2) + transitions.view(1, L, L, 1)).permute(0, 2, 1, 3)
    best, backpointers = candidates.reshape(B, L, L * K).topk(k, dim=2)
    return best + emission.unsqueeze(2), backpointers


def kbest_decode(emissions: Tensor, mask: Tensor, transitions: Tensor, start: Tensor,
                 end: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """The k highest-scoring labellings.

    Args:
        emissions: (B, T, L); mask: (B, T) valid prefix mask; transitions (L, L), start and
            end (L,) scores (``-inf`` where forbidden).
    Returns:
        labels (B, k, T) long (0 on padding) and their scores (B, k), decreasing; a rank
        with no labelling left (fewer than k exist) has score ``-inf``.
    """
    B, T, L = emissions.shape
    scores = torch.full((B, L, k), float("-inf"), dtype=emissions.dtype,
                        device=emissions.device)
    scores[:, :, 0] = start + emissions[:, 0]
    identity = torch.arange(L * k, device=emissions.device).view(1, L, k).expand(B, L, k)
    history = []
    for t in range(1, T):
        new_scores, backpointers = _step(scores, transitions, emissions[:, t], k)
        real = mask[:, t].view(B, 1, 1)
        scores = torch.where(real, new_scores, scores)
        history.append(torch.where(real, backpointers, identity))
    final, flat = (scores + end.view(1, L, 1)).reshape(B, L * k).topk(k, dim=1)
    path = [flat // k]  # labels at T - 1, then T - 2, ... (B, k)
    for backpointers in reversed(history):
        flat = backpointers.reshape(B, L * k).gather(1, flat)
        path.append(flat // k)
    labels = torch.stack(path[::-1], 2).masked_fill(~mask.unsqueeze(1), 0)
    return labels, final
