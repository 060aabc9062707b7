"""Linear-chain CRF: energy of one-hot or relaxed label sequences, log-partition, Viterbi.

All tensors are batch first. ``B`` is the batch size, ``T`` the padded length and ``L`` the
number of labels. A ``mask`` is a ``(B, T)`` bool tensor that is True on real tokens; each
row must be a non-empty prefix (left-aligned sequences, first position always real).

The energy of a labelling ``y`` (``(B, T, L)``, rows one-hot or on the simplex) is

    E(x, y) = -( sum_t y_t . e_t + sum_{t>0} y_{t-1}^T W y_t + y_0 . s + y_n . f )

with emissions ``e`` (``(B, T, L)``), transitions ``W`` (``(L, L)``, from row to column),
start scores ``s`` and end scores ``f`` (``(L,)``). The forward algorithm and Viterbi are
one recursion over two semirings (log-sum-exp and max-plus), so Viterbi minimises exactly
the energy defined here, start and end terms included.
"""

from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# (previous scores (B, L), transitions (L, L)) -> (scores (B, L), backpointers (B, L) or None)
SemiringStep = Callable[[Tensor, Tensor], Tuple[Tensor, Optional[Tensor]]]


def _log_semiring_step(prev: Tensor, transitions: Tensor) -> Tuple[Tensor, None]:
    return torch.logsumexp(prev.unsqueeze(2) + transitions, dim=1), None


def _max_semiring_step(prev: Tensor, transitions: Tensor) -> Tuple[Tensor, Tensor]:
    return (prev.unsqueeze(2) + transitions).max(dim=1)


def check_mask(emissions: Tensor, mask: Optional[Tensor]) -> Tensor:
    """Validates ``emissions`` (B, T, L) and returns a bool mask (B, T) (all True if None)."""
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


class LinearChainCRF(nn.Module):
    """Transition, start and end scores of a first-order CRF over ``num_labels`` labels."""

    def __init__(self, num_labels: int):
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {num_labels}")
        self.num_labels = num_labels
        self.transitions = nn.Parameter(torch.empty(num_labels, num_labels))
        self.start = nn.Parameter(torch.empty(num_labels))
        self.end = nn.Parameter(torch.empty(num_labels))
        self.reset_parameters()

    def reset_parameters(self):
        for p in (self.transitions, self.start, self.end):
            nn.init.uniform_(p, -0.1, 0.1)

    def extra_repr(self) -> str:
        return f"num_labels={self.num_labels}"

    # ----------------------------------------------------------------- energies
    def energy(self, emissions: Tensor, labels: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Energy of label sequences, one-hot or relaxed.

        Args:
            emissions: (B, T, L) unary scores.
            labels: (B, T) label indices, or (B, T, L) distributions (one-hot or relaxed).
                Padded positions are ignored whatever they hold.
            mask: (B, T) bool, True on real tokens.
        Returns:
            (B,) energies, ``-score``; lower is better.
        """
        mask = check_mask(emissions, mask)
        if labels.dim() == 2:
            labels = F.one_hot(labels.masked_fill(~mask, 0), self.num_labels).to(emissions)
        if labels.shape != emissions.shape:
            raise ValueError(
                f"labels shape {tuple(labels.shape)} does not match emissions "
                f"{tuple(emissions.shape)}"
            )
        y = labels * mask.unsqueeze(2).to(labels)
        unary = (y * emissions).sum(dim=(1, 2))
        pairwise = torch.einsum("bti,ij,btj->b", y[:, :-1], self.transitions, y[:, 1:])
        last = (mask.sum(1) - 1).clamp(min=0)
        y_last = y.gather(1, last.view(-1, 1, 1).expand(-1, 1, y.shape[2])).squeeze(1)
        return -(unary + pairwise + y[:, 0] @ self.start + y_last @ self.end)

    # ---------------------------------------------------------------- recursion
    def _recursion(self, emissions: Tensor, mask: Tensor, step: SemiringStep):
        """Runs ``step`` left to right; returns final scores (B, L) and backpointers.

        Backpointers are a list of T-1 tensors (B, L); on padded positions they are the
        identity, so backtracking passes through padding unchanged.
        """
        scores = self.start + emissions[:, 0]
        identity = torch.arange(self.num_labels, device=emissions.device).expand_as(scores)
        backpointers = []
        for t in range(1, emissions.shape[1]):
            new_scores, bp = step(scores, self.transitions)
            keep = mask[:, t].unsqueeze(1)
            scores = torch.where(keep, new_scores + emissions[:, t], scores)
            if bp is not None:
                backpointers.append(torch.where(keep, bp, identity))
        return scores + self.end, backpointers

    def log_partition(self, emissions: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Forward algorithm: log Z(x) = log sum_y exp(-E(x, y)) over one-hot y, shape (B,)."""
        mask = check_mask(emissions, mask)
        final, _ = self._recursion(emissions, mask, _log_semiring_step)
        return torch.logsumexp(final, dim=1)

    def nll(
        self, emissions: Tensor, labels: Tensor, mask: Optional[Tensor] = None,
        reduction: str = "sum",
    ) -> Tensor:
        """Negative conditional log-likelihood ``E(x, y) + log Z(x)`` of gold ``labels`` (B, T).

        ``reduction`` is ``"none"`` ((B,) values), ``"sum"`` or ``"mean"`` (over sentences).
        """
        losses = self.energy(emissions, labels, mask) + self.log_partition(emissions, mask)
        if reduction == "none":
            return losses
        if reduction == "sum":
            return losses.sum()
        if reduction == "mean":
            return losses.mean()
        raise ValueError(f"reduction must be none, sum or mean, got {reduction!r}")

    def viterbi(self, emissions: Tensor, mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Minimum-energy labelling.

        Returns:
            labels: (B, T) long, 0 on padded positions.
            energies: (B,) energy of each returned labelling (the minimum over all labellings).
        """
        mask = check_mask(emissions, mask)
        final, backpointers = self._recursion(emissions, mask, _max_semiring_step)
        best, last = final.max(dim=1)
        path = [last]
        for bp in reversed(backpointers):
            last = bp.gather(1, last.unsqueeze(1)).squeeze(1)
            path.append(last)
        labels = torch.stack(path[::-1], dim=1).masked_fill(~mask, 0)
        return labels, -best
