"""``LinearChainCRF``: energy of one-hot or relaxed label sequences, log-partition,
marginals, Viterbi and k-best decoding, optionally under label constraints.

All tensors are batch first. ``B`` is the batch size, ``T`` the padded length and ``L`` the
number of labels. A ``mask`` is a ``(B, T)`` bool tensor that is True on real tokens; each
row must be a non-empty prefix (left-aligned sequences, first position always real).

The energy of a labelling ``y`` (``(B, T, L)``, rows one-hot or on the simplex) is

    E(x, y) = -( sum_t y_t . e_t + sum_{t>0} y_{t-1}^T W y_t + y_0 . s + y_n . f )

with emissions ``e`` (``(B, T, L)``), transitions ``W`` (``(L, L)``, from row to column),
start scores ``s`` and end scores ``f`` (``(L,)``), ``y_n`` the label of the last real
position. Every routine scores exactly this energy, start and end terms included:
``log_partition`` is ``log sum_y exp(-E(x, y))`` over one-hot ``y`` (the forward algorithm,
in scaled exp space where the range of the scores allows it and in log space otherwise, see
``forward_backward``); ``viterbi`` and ``kbest`` minimise it (max-plus recursions, see
``viterbi`` and ``kbest``), so Viterbi's output has the lowest energy of all labellings.
The three are separate loops, each laid out for its own speed, not one recursion written
over two semirings; the tests check each against enumeration of all labellings.
``constraints`` (``label_constraints``) restrict decoding and the marginals to allowed
paths by scoring forbidden transitions ``-inf``; the energies of allowed paths are unchanged.
"""

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from engine_plugin.crf import forward_backward
from engine_plugin.crf.constraints import check_constraints, constrained_scores
from engine_plugin.crf.kbest import kbest_decode
from engine_plugin.crf.masks import last_positions
from engine_plugin.crf.viterbi import compile_enabled, max_plus_decode
from engine_plugin.masks import check_mask


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

    def _params(self):
        return self.transitions, self.start, self.end

    def _scores(self, constraints, device):
        """(transitions, start, end), ``-inf`` where ``constraints`` forbid (None: all)."""
        if constraints is not None:
            constraints = check_constraints(constraints, self.num_labels, device)
        return constrained_scores(*self._params(), constraints)

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
        mask = check_mask(emissions, mask, "emissions")
        if labels.dim() == 2:
            return self._index_energy(emissions, labels, mask)
        if labels.shape != emissions.shape:
            raise ValueError(
                f"labels shape {tuple(labels.shape)} does not match emissions "
                f"{tuple(emissions.shape)}"
            )
        y = labels * mask.unsqueeze(2).to(labels)
        unary = (y * emissions).sum(dim=(1, 2))
        pairwise = torch.einsum("bti,ij,btj->b", y[:, :-1], self.transitions, y[:, 1:])
        last = last_positions(mask).clamp(min=0)
        y_last = y.gather(1, last.view(-1, 1, 1).expand(-1, 1, y.shape[2])).squeeze(1)
        return -(unary + pairwise + y[:, 0] @ self.start + y_last @ self.end)

    def _index_energy(self, emissions: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
        """Energy of label indices (B, T) by gathers (no (B, T, L) one-hots)."""
        if labels.shape != mask.shape:
            raise ValueError(f"labels shape {tuple(labels.shape)} does not match emissions "
                             f"{tuple(emissions.shape[:2])}")
        labels = labels.masked_fill(~mask, 0)
        if emissions.shape[1] == 0:
            return emissions.new_zeros(emissions.shape[0])
        unary = emissions.gather(2, labels.unsqueeze(2)).squeeze(2)
        pairwise = self.transitions[labels[:, :-1], labels[:, 1:]]
        score = (unary.masked_fill(~mask, 0).sum(1)
                 + pairwise.masked_fill(~mask[:, 1:], 0).sum(1)
                 + self.start[labels[:, 0]]
                 + self.end[labels.gather(1, last_positions(mask).unsqueeze(1)).squeeze(1)])
        return -score

    # ------------------------------------------------------- partition, marginals
    def log_partition(self, emissions: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """log Z(x) = log sum_y exp(-E(x, y)) over one-hot y, shape (B,); differentiable,
        its gradient with respect to the emissions being the marginals (an analytic backward
        in scaled exp space, autograd through the log-space fallback)."""
        mask = check_mask(emissions, mask, "emissions")
        return forward_backward.log_partition(emissions, mask, *self._params())

    def marginals(self, emissions: Tensor, mask: Optional[Tensor] = None,
                  constraints=None) -> Tensor:
        """p(y_t = l | x), (B, T, L): rows sum to 1 on real tokens, 0 on padding. Not
        differentiable (differentiate ``log_partition`` for gradients).

        With ``constraints`` (as for ``viterbi``) the distribution is over allowed
        labellings only (computed by the log-space recursion, exact but slower)."""
        mask = check_mask(emissions, mask, "emissions")
        return forward_backward.marginals(emissions, mask,
                                          *self._scores(constraints, emissions.device))

    def nll(
        self, emissions: Tensor, labels: Tensor, mask: Optional[Tensor] = None,
        reduction: str = "sum",
    ) -> Tensor:
        """Negative conditional log-likelihood ``E(x, y) + log Z(x)`` of gold ``labels`` (B, T).

        ``reduction`` is ``"none"`` ((B,) values), ``"sum"`` or ``"mean"`` (over sentences).
        """
        if reduction not in ("none", "sum", "mean"):
            raise ValueError(f"reduction must be none, sum or mean, got {reduction!r}")
        if labels.dim() != 2:
            raise ValueError(f"nll takes gold label indices (B, T), got shape {tuple(labels.shape)}")
        mask = check_mask(emissions, mask, "emissions")
        losses = (self._index_energy(emissions, labels, mask)
                  + forward_backward.log_partition(emissions, mask, *self._params()))
        if reduction == "none":
            return losses
        return losses.sum() if reduction == "sum" else losses.mean()

    # ------------------------------------------------------------------ decoding
    def viterbi(
        self, emissions: Tensor, mask: Optional[Tensor] = None, compile: Optional[bool] = None,
        constraints=None,
    ) -> Tuple[Tensor, Tensor]:
        """Minimum-energy labelling.

        Args:
            emissions: (B, T, L) unary scores.
            mask: (B, T) bool, True on real tokens.
            compile: use a torch.compile'd max-plus step when ``L >= COMPILE_MIN_LABELS``
                (80, in ``engine_plugin.crf.viterbi``). None: follow the
                ``ENGINE_PLUGIN_CRF_COMPILE`` environment variable, off by default. The first
                compiled call of a process compiles (seconds); failures fall back to eager.
            constraints: ``(transitions (L, L), start (L,), end (L,))`` bool, True where
                allowed (``label_constraints``); None allows everything.
        Returns:
            labels: (B, T) long, 0 on padded positions.
            energies: (B,) energy of each returned labelling (the minimum over all allowed
                labellings); differentiable with respect to the emissions and the CRF
                parameters when gradients are enabled.
        """
        mask = check_mask(emissions, mask, "emissions")
        if emissions.shape[1] == 0:
            raise ValueError("viterbi needs at least one position (T >= 1)")
        if compile is None:
            compile = compile_enabled()
        last = last_positions(mask)
        # Labels never need gradients: decode without autograd bookkeeping (inference mode
        # makes the many small ops of the loop ~10% cheaper; the compiled step, if any, thus
        # never sees autograd). Everything returned is built outside it, so callers get
        # ordinary tensors; energies that need gradients are rescored from the labels.
        with torch.inference_mode():
            scores = self._scores(constraints, emissions.device)
            best, reversed_labels, reverse_index = max_plus_decode(
                emissions, last, *scores, compile)
            if constraints is not None and not torch.isfinite(best).all():
                raise ValueError("no labelling satisfies the constraints for some sentence: "
                                 "check the allowed transitions, start and end labels")
        labels = reversed_labels.gather(1, reverse_index).masked_fill(~mask, 0)
        if torch.is_grad_enabled() and any(t.requires_grad for t in (emissions,) + self._params()):
            return labels, self.energy(emissions, labels, mask)
        return labels, -best

    def kbest(
        self, emissions: Tensor, mask: Optional[Tensor] = None, k: int = 1, constraints=None,
    ) -> Tuple[Tensor, Tensor]:
        """The ``k`` lowest-energy labellings, in increasing energy.

        Args:
            emissions: (B, T, L); mask: (B, T) bool; k: how many labellings per sentence;
            constraints: as for ``viterbi``.
        Returns:
            labels: (B, k, T) long, 0 on padded positions.
            energies: (B, k), increasing; ``inf`` (and labels 0) for ranks beyond the number
                of (allowed) labellings of a short sentence. Differentiable like ``viterbi``'s.
        """
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        mask = check_mask(emissions, mask, "emissions")
        B, T, L = emissions.shape
        if T == 0:
            raise ValueError("kbest needs at least one position (T >= 1)")
        with torch.no_grad():
            scores = self._scores(constraints, emissions.device)
            labels, best = kbest_decode(emissions, mask, *scores, k)
        found = torch.isfinite(best)
        if constraints is not None and not found[:, 0].all():
            raise ValueError("no labelling satisfies the constraints for some sentence: "
                             "check the allowed transitions, start and end labels")
        labels = labels.masked_fill(~found.unsqueeze(2), 0)
        flat_mask = mask.unsqueeze(1).expand(B, k, T).reshape(B * k, T)
        flat_emissions = emissions.unsqueeze(1).expand(B, k, T, L).reshape(B * k, T, L)
        energies = self.energy(flat_emissions, labels.view(B * k, T), flat_mask).view(B, k)
        return labels, energies.masked_fill(~found, float("inf"))
