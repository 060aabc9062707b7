"""The log-partition ``log Z`` of a linear-chain CRF and its gradient, the marginals.

Shapes: emissions ``(B, T, L)``, a valid prefix mask ``(B, T)``, transitions ``(L, L)``
(from row to column), start and end scores ``(L,)``.

Two implementations of the same quantity:

- ``log_partition_reference``: the plain forward algorithm, a ``(B, L, L)`` log-sum-exp per
  position, differentiated by autograd through all T steps. Exact for any finite (or
  ``-inf``) potentials; the reference of the tests and the fallback below.
- ``log_partition``: forward-backward in *scaled exp space*. With ``P = exp(W - max W)``,
  ``Q_t = exp(e_t - max_l e_t)``, each forward step is a matrix product
  ``a_t = (a_{t-1} P) * Q_t`` (``(B, L) x (L, L)``) renormalised to sum 1, the norms
  ``c_t`` accumulating ``log Z``. Its backward (a ``torch.autograd.Function``) runs one
  backward recursion ``b_t = P (Q_{t+1} * b_{t+1})`` and returns the marginals as the
  gradient with respect to the emissions, and expected transition counts (one
  ``(L, B T) x (B T, L)`` product) as that of the transitions: no autograd tape through T.

Scaled exp space is exact up to rounding as long as no score that matters underflows. The
entries of ``a_t`` and ``b_t`` that carry probability mass are within ``exp(-R)`` of the
largest one, where ``R`` is the widest range of the transitions, start or end scores
(emissions may be anything: they are shifted per position). So the fast path runs when
``R`` is small enough for the dtype (``_MAX_RANGE``), in float64 when float32 is too
narrow, and the reference recursion (in float64 for float32 inputs) takes over beyond
(e.g. transitions of +-1e3, or ``-inf`` scores).
"""

from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from engine_plugin.crf.masks import last_positions, reversed_index

# widest score range (transitions, start, end) for which each dtype's exp space is safe
_MAX_RANGE = {torch.float32: 12.0, torch.float64: 100.0}


def log_partition_reference(emissions: Tensor, mask: Tensor, transitions: Tensor,
                            start: Tensor, end: Tensor) -> Tensor:
    """Forward algorithm in log space over real positions: log Z, shape (B,)."""
    scores = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        new_scores = torch.logsumexp(scores.unsqueeze(2) + transitions, dim=1)
        scores = torch.where(mask[:, t].unsqueeze(1), new_scores + emissions[:, t], scores)
    return torch.logsumexp(scores + end, dim=1)


class _ExpSpace(NamedTuple):
    """Shifted exponentials of the potentials and the shifts (see the module docstring)."""

    P: Tensor  # (L, L) exp(W - w_max)
    Q: Tensor  # (B, T, L) exp(e - e_max)
    e_max: Tensor  # (B, T)
    w_max: Tensor  # ()
    start: Tensor  # (L,) exp(s - s_max)
    s_max: Tensor
    end: Tensor  # (L,) exp(f - f_max)
    f_max: Tensor


def _exp_space(emissions, transitions, start, end) -> _ExpSpace:
    e_max = emissions.amax(2)
    w_max, s_max, f_max = transitions.max(), start.max(), end.max()
    return _ExpSpace((transitions - w_max).exp(), (emissions - e_max.unsqueeze(2)).exp(), e_max,
                     w_max, (start - s_max).exp(), s_max, (end - f_max).exp(), f_max)


def _alphas(space: _ExpSpace):
    """Scaled forward scores over all T positions (padding included, discarded later).

    Returns ``alphas`` (B, T, L), each row ∝ exp(α_t) and summing to 1, and the norms
    ``c`` (B, T) they were divided by."""
    steps = space.Q.unbind(1)
    a = space.start * steps[0]
    norms = [a.sum(1, keepdim=True)]
    history = [a.div_(norms[0])]
    for q in steps[1:]:
        a = torch.mm(a, space.P).mul_(q)
        norms.append(a.sum(1, keepdim=True))
        history.append(a.div_(norms[-1]))
    return torch.stack(history, 1), torch.cat(norms, 1)


def _log_z(space: _ExpSpace, alphas: Tensor, norms: Tensor, mask: Tensor, last: Tensor):
    """log Z (B,) from the forward pass, read at each sequence's last position."""
    B, _, L = alphas.shape
    a_last = alphas.gather(1, last.view(B, 1, 1).expand(B, 1, L)).squeeze(1)
    per_step = (norms.log() + space.e_max).masked_fill(~mask, 0).sum(1)
    return (per_step + space.s_max + space.w_max * last + space.f_max
            + torch.mv(a_last, space.end).log())


def _betas(space: _ExpSpace, last: Tensor) -> Tensor:
    """Scaled backward scores (B, T, L), rows ∝ exp(β_t) on real positions (β_t excludes
    e_t and includes the end score), computed in reversed alignment so that every
    sequence starts from its own last position without per-step masking."""
    B, T, L = space.Q.shape
    index = reversed_index(last, T)
    steps = space.Q.gather(1, index.unsqueeze(2).expand(B, T, L)).unbind(1)
    b = (space.end / space.end.sum()).expand(B, L)
    history = [b]
    P_t = space.P.t()
    for q in steps[:-1]:
        b = torch.mm(q * b, P_t)
        history.append(b.div_(b.sum(1, keepdim=True)))
    return torch.stack(history, 1).gather(1, index.unsqueeze(2).expand(B, T, L))


def _marginal_terms(alphas: Tensor, betas: Tensor, mask: Tensor):
    """Marginals (B, T, L) (0 on padding) and the row sums (B, T) of ``alphas * betas``."""
    products = alphas * betas
    sums = products.sum(2)
    marginals = (products / sums.unsqueeze(2)).masked_fill(~mask.unsqueeze(2), 0)
    return marginals, sums


def _transition_counts(space, alphas, betas, norms, sums, weights, mask) -> Tensor:
    """``sum_b weights[b] sum_{t>0} p(y_{t-1} = i, y_t = j)``, (L, L).

    The pairwise marginal is ``alphas[t-1, i] P[i, j] Q[t, j] betas[t, j]`` divided by
    its total ``norms[t] * sums[t]``."""
    real = mask[:, 1:].unsqueeze(2)
    scale = (weights.unsqueeze(1) / (norms[:, 1:] * sums[:, 1:])).unsqueeze(2)
    left = (alphas[:, :-1] * scale).masked_fill(~real, 0).flatten(0, 1)
    right = (space.Q[:, 1:] * betas[:, 1:]).masked_fill(~real, 0).flatten(0, 1)
    return torch.mm(left.t(), right).mul_(space.P)


class _LogPartition(torch.autograd.Function):
    """log Z (B,) in scaled exp space, with the analytic backward (marginals)."""

    @staticmethod
    def forward(ctx, emissions, mask, transitions, start, end):
        space = _exp_space(emissions, transitions, start, end)
        last = last_positions(mask)
        alphas, norms = _alphas(space)
        ctx.save_for_backward(mask, last, alphas, norms, *space)
        return _log_z(space, alphas, norms, mask, last)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        mask, last, alphas, norms, *fields = ctx.saved_tensors
        space = _ExpSpace(*fields)
        betas = _betas(space, last)
        marginals, sums = _marginal_terms(alphas, betas, mask)
        grad_emissions = marginals * grad.view(-1, 1, 1)
        B, L = grad.shape[0], alphas.shape[2]
        grad_start = grad @ marginals[:, 0]
        grad_end = grad @ marginals.gather(1, last.view(B, 1, 1).expand(B, 1, L)).squeeze(1)
        grad_transitions = _transition_counts(space, alphas, betas, norms, sums, grad, mask)
        return grad_emissions, None, grad_transitions, grad_start, grad_end


def _fast_dtype(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor):
    """The dtype whose exp space is safe for these scores, or None (use the reference)."""
    if emissions.dtype not in _MAX_RANGE:
        return None
    with torch.no_grad():
        ranges = torch.stack([p.max() - p.min() for p in (transitions, start, end)]).max()
        widest = torch.where(torch.isfinite(emissions).all(), ranges, float("inf")).item()
    for dtype in (emissions.dtype, torch.float64):
        if widest <= _MAX_RANGE[dtype]:  # False for nan/inf ranges
            return dtype
    return None


def _wide(dtype):
    """The dtype of the reference fallback: float32 widened to float64 (scores of +-1e4
    leave float32 too few digits for the differences the marginals are made of)."""
    return torch.float64 if dtype == torch.float32 else dtype


def log_partition(emissions: Tensor, mask: Tensor, transitions: Tensor, start: Tensor,
                  end: Tensor) -> Tensor:
    """log Z (B,), differentiable with respect to all potentials (see the module docstring)."""
    if emissions.shape[1] == 0:
        raise ValueError("log_partition needs at least one position (T >= 1)")
    dtype = _fast_dtype(emissions, transitions, start, end)
    args = [p.to(dtype or _wide(emissions.dtype)) for p in (emissions, transitions, start, end)]
    if dtype is None:
        log_z = log_partition_reference(args[0], mask, *args[1:])
    else:
        log_z = _LogPartition.apply(args[0], mask, *args[1:])
    return log_z.to(emissions.dtype)


def marginals(emissions: Tensor, mask: Tensor, transitions: Tensor, start: Tensor,
              end: Tensor) -> Tensor:
    """p(y_t = l | x), (B, T, L): rows sum to 1 on real tokens, 0 on padding."""
    if emissions.shape[1] == 0:
        raise ValueError("marginals need at least one position (T >= 1)")
    dtype = _fast_dtype(emissions, transitions, start, end)
    if dtype is None:
        wide = [p.detach().to(_wide(emissions.dtype)) for p in (emissions, transitions, start, end)]
        with torch.enable_grad():
            leaf = wide[0].requires_grad_(True)
            log_z = log_partition_reference(leaf, mask, *wide[1:])
            grad, = torch.autograd.grad(log_z.sum(), leaf)
        return grad.masked_fill(~mask.unsqueeze(2), 0).to(emissions.dtype)
    with torch.no_grad():
        space = _exp_space(*(p.to(dtype) for p in (emissions, transitions, start, end)))
        last = last_positions(mask)
        alphas, _ = _alphas(space)
        result, _ = _marginal_terms(alphas, _betas(space, last), mask)
    return result.to(emissions.dtype)
