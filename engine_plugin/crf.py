"""Linear-chain CRF: energy of one-hot or relaxed label sequences, log-partition, Viterbi.

All tensors are batch first. ``B`` is the batch size, ``T`` the padded length and ``L`` the
number of labels. A ``mask`` is a ``(B, T)`` bool tensor that is True on real tokens; each
row must be a non-empty prefix (left-aligned sequences, first position always real).

The energy of a labelling ``y`` (``(B, T, L)``, rows one-hot or on the simplex) is

    E(x, y) = -( sum_t y_t . e_t + sum_{t>0} y_{t-1}^T W y_t + y_0 . s + y_n . f )

with emissions ``e`` (``(B, T, L)``), transitions ``W`` (``(L, L)``, from row to column),
start scores ``s`` and end scores ``f`` (``(L,)``). The forward algorithm and Viterbi are
the same recursion over two semirings (log-sum-exp and max-plus), so Viterbi minimises exactly
the energy defined here, start and end terms included. Viterbi's max-plus loop is laid out for
decoding speed (see ``LinearChainCRF.viterbi``): the step reduces over a contiguous dimension
and can be fused by ``torch.compile``.

Set the environment variable ``ENGINE_PLUGIN_CRF_COMPILE=1`` to let Viterbi use a
``torch.compile``'d max-plus step for large label sets (``0``, the default, keeps it eager).
"""

import logging
import os
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

def _log_semiring_step(prev: Tensor, transitions: Tensor) -> Tensor:
    """log-sum-exp "product" of scores (B, L_from) with transitions (L_from, L_to)."""
    return torch.logsumexp(prev.unsqueeze(2) + transitions, dim=1)


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


# ------------------------------------------------------------------ Viterbi (max-plus)
logger = logging.getLogger(__name__)

# Max-plus steps of the decoding loop. They take the transitions TRANSPOSED, ``(L_to, L_from)``
# contiguous, so that the max runs over the last, contiguous dimension (several times faster
# than reducing over dim 1 of ``(B, L_from, L_to)``), and add the emission after the max (the
# same floating-point values as adding it inside, since x -> x + e is monotone).


def _max_plus_step(prev: Tensor, transitions_t: Tensor, emission: Tensor):
    """Max-plus step with backpointers (cheapest for small label sets)."""
    best, backpointers = (prev.unsqueeze(1) + transitions_t).max(dim=2)
    return best + emission, backpointers


def _max_plus_values(prev: Tensor, transitions_t: Tensor) -> Tensor:
    """Max-plus product without backpointers (the part worth compiling: fused, it never
    materialises the (B, L, L) sums). Backpointers are recomputed for the chosen labels only;
    for large label sets ``max(dim)`` with indices is ~6x slower than ``amax`` (L=400)."""
    return (prev.unsqueeze(1) + transitions_t).amax(dim=2)


# Up to this many labels the step returns backpointers (and the backtrace is one gather per
# position); above it only values are kept and the backtrace recomputes one argmax per
# position over (B, L) instead of storing (B, L) backpointers from a (B, L, L) argmax.
# (CPU, B=10, T=30: backpointers faster at L=17, 25; values faster from L=32 on.)
_BACKPOINTER_MAX_LABELS = 28
# torch.compile of the max-plus step only pays from about this size: a compiled call costs
# ~30 us on CPU, more than a whole eager step at small L (eager faster at L=64, compiled
# faster from L=96 on).
_COMPILE_MIN_LABELS = 80
_compiled_values: Optional[Callable[[Tensor, Tensor], Tensor]] = None
_compile_failed = False


def _compile_enabled() -> bool:
    value = os.environ.get("ENGINE_PLUGIN_CRF_COMPILE", "0").strip().lower()
    return value not in ("0", "", "false", "no", "off")


def _value_step(prev: Tensor, transitions_t: Tensor, emission: Tensor, use_compiled: bool):
    """Max-plus step without backpointers, through torch.compile when asked and possible.

    ``_max_plus_values`` is compiled with ``dynamic=True`` (one graph for all batch sizes and
    label counts of a dtype, plus one for batch size 1). Only fresh contiguous tensors go
    into it (the emission, a strided view, is added outside: views with varying storage
    offsets would recompile at every position). If compilation fails (no C++ compiler,
    unsupported backend...), warns once and stays eager for the rest of the process."""
    global _compiled_values, _compile_failed
    if use_compiled and not _compile_failed:
        try:
            if _compiled_values is None:
                _compiled_values = torch.compile(_max_plus_values, dynamic=True)
            return _compiled_values(prev, transitions_t) + emission, None
        except Exception as err:  # noqa: BLE001 - any backend failure: fall back to eager
            _compile_failed = True
            logger.warning("torch.compile of the Viterbi step failed, staying eager: %s", err)
    return _max_plus_values(prev, transitions_t) + emission, None


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
    def _forward_scores(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Forward algorithm over real positions; returns final log-scores (B, L)."""
        scores = self.start + emissions[:, 0]
        for t in range(1, emissions.shape[1]):
            new_scores = _log_semiring_step(scores, self.transitions)
            scores = torch.where(mask[:, t].unsqueeze(1), new_scores + emissions[:, t], scores)
        return scores + self.end

    def log_partition(self, emissions: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Forward algorithm: log Z(x) = log sum_y exp(-E(x, y)) over one-hot y, shape (B,)."""
        mask = check_mask(emissions, mask)
        final = self._forward_scores(emissions, mask)
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

    def viterbi(
        self, emissions: Tensor, mask: Optional[Tensor] = None, compile: Optional[bool] = None
    ) -> Tuple[Tensor, Tensor]:
        """Minimum-energy labelling.

        Args:
            emissions: (B, T, L) unary scores.
            mask: (B, T) bool, True on real tokens.
            compile: use a torch.compile'd max-plus step when ``L >= 80`` (None: follow the
                ``ENGINE_PLUGIN_CRF_COMPILE`` environment variable, off by default). The first
                compiled call of a process compiles (seconds); failures fall back to eager.
        Returns:
            labels: (B, T) long, 0 on padded positions.
            energies: (B,) energy of each returned labelling (the minimum over all labellings);
                differentiable with respect to the emissions and the CRF parameters when
                gradients are enabled.
        """
        mask = check_mask(emissions, mask)
        if emissions.shape[1] == 0:
            raise ValueError("viterbi needs at least one position (T >= 1)")
        if compile is None:
            compile = _compile_enabled()
        last = mask.sum(1) - 1
        # Labels never need gradients: decode without autograd bookkeeping (inference mode
        # makes the many small ops of the loop ~10% cheaper; the compiled step, if any, thus
        # never sees autograd). Everything returned is built outside it, so callers get
        # ordinary tensors; energies that need gradients are rescored from the labels.
        with torch.inference_mode():
            best, reversed_labels, reverse_index = self._max_plus_decode(emissions, last, compile)
        labels = reversed_labels.gather(1, reverse_index).masked_fill(~mask, 0)
        params = (self.transitions, self.start, self.end)
        if torch.is_grad_enabled() and any(t.requires_grad for t in (emissions,) + params):
            return labels, self.energy(emissions, labels, mask)
        return labels, -best

    def _max_plus_decode(self, emissions: Tensor, last: Tensor, compile: bool):
        """Max-plus recursion and backtrace.

        The recursion runs over all T positions without masking: since every sequence is a
        prefix, the scores of position ``last[b]`` never depend on padding, and the best
        final score is read there. The backtrace then runs in *reversed alignment*
        (step k handles position ``last[b] - k`` of every sequence b), so sequences of
        different lengths need no per-step masking either: what is computed past the start
        of a short sequence is discarded.

        Returns the best scores (B,), the labels in reversed alignment (B, T) and the index
        ``last[b] - t`` (clamped, (B, T)) that maps them back (it is its own inverse).
        """
        B, T, L = emissions.shape
        transitions_t = self.transitions.t().contiguous()  # (L_to, L_from)
        with_backpointers = L <= _BACKPOINTER_MAX_LABELS
        use_compiled = compile and not with_backpointers and L >= _COMPILE_MIN_LABELS
        steps = emissions.unbind(1)
        scores = self.start + steps[0]
        history, backpointers = [scores], []
        for emission in steps[1:]:
            if with_backpointers:
                scores, bp = _max_plus_step(scores, transitions_t, emission)
                backpointers.append(bp)
            else:
                scores, _ = _value_step(scores, transitions_t, emission, use_compiled)
            history.append(scores)
        alphas = torch.stack(history, 1)  # (B, T, L)
        final = alphas.gather(1, last.view(B, 1, 1).expand(B, 1, L)).squeeze(1) + self.end
        best, label = final.max(dim=1, keepdim=True)
        reverse_index = (last.unsqueeze(1) - torch.arange(T, device=last.device)).clamp_(min=0)
        path = [label]  # path[k]: label at position last - k, (B, 1)
        if with_backpointers:
            if T > 1:
                # backpointers[t - 1] maps a label at t to the best one at t - 1
                stacked = torch.stack(backpointers, 1)
                index = reverse_index[:, 1:].unsqueeze(2).expand(B, T - 1, L)
                for bp in stacked.gather(1, index).unbind(1):
                    label = bp.gather(1, label)
                    path.append(label)
        else:
            # label at t - 1 = argmax_i alphas[t - 1, i] + W[i, label at t]
            index = reverse_index.unsqueeze(2).expand(B, T, L)
            label = label.squeeze(1)
            for alpha in alphas.gather(1, index).unbind(1)[1:]:
                label = (alpha + transitions_t.index_select(0, label)).argmax(dim=1)
                path.append(label.unsqueeze(1))
        return best.squeeze(1), torch.cat(path, 1), reverse_index
