"""Viterbi: the max-plus recursion and its backtrace, laid out for decoding speed.

The step reduces over a contiguous dimension and can be fused by ``torch.compile``. Set the
environment variable ``ENGINE_PLUGIN_CRF_COMPILE=1`` to let Viterbi use a ``torch.compile``'d
max-plus step for large label sets (``0``, the default, keeps it eager).
"""

import logging
import os
from typing import Callable, Optional

import torch
from torch import Tensor

from engine_plugin.crf.masks import reversed_index

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
COMPILE_MIN_LABELS = 80
"""Fewest labels for which ``viterbi(..., compile=True)`` uses the ``torch.compile``'d
max-plus step (below it decoding stays eager): a compiled call costs ~30 us on CPU, more
than a whole eager step at small L (eager faster at L=64, compiled faster from L=96 on)."""
_compiled_values: Optional[Callable[[Tensor, Tensor], Tensor]] = None
_compile_failed = False


def compile_enabled() -> bool:
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


def max_plus_decode(emissions: Tensor, last: Tensor, transitions: Tensor, start: Tensor,
                    end: Tensor, compile: bool):
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
    transitions_t = transitions.t().contiguous()  # (L_to, L_from)
    with_backpointers = L <= _BACKPOINTER_MAX_LABELS
    use_compiled = compile and not with_backpointers and L >= COMPILE_MIN_LABELS
    steps = emissions.unbind(1)
    scores = start + steps[0]
    history, backpointers = [scores], []
    for emission in steps[1:]:
        if with_backpointers:
            scores, bp = _max_plus_step(scores, transitions_t, emission)
            backpointers.append(bp)
        else:
            scores, _ = _value_step(scores, transitions_t, emission, use_compiled)
        history.append(scores)
    alphas = torch.stack(history, 1)  # (B, T, L)
    final = alphas.gather(1, last.view(B, 1, 1).expand(B, 1, L)).squeeze(1) + end
    best, label = final.max(dim=1, keepdim=True)
    reverse_index = reversed_index(last, T)
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
