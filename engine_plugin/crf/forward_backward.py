"""The log-partition ``log Z`` of a linear-chain CRF and its gradient, the marginals.

Shapes: emissions ``(B, T, L)``, a valid prefix mask ``(B, T)``, transitions ``(L, L)``
(from row to column), start and end scores ``(L,)``.

Two implementations of the same quantity:

- ``log_partition_reference``: the plain forward algorithm, a ``(B, L, L)`` log-sum-exp per
  position, differentiated by autograd through all T steps. Exact for any finite (or
  ``-inf``) potentials; the reference of the tests and the fallback below.
- ``log_partition``: forward-backward in *scaled exp space*. With ``P = exp(W - max W)``,
  ``Q_t = exp(e_t - max_l e_t)``, each forward step is a matrix product
  ``a_t = (a_{t-1} P) * Q_t`` (``(B, L) x (L, L)``), renormalised every few steps, the
  norms ``c_t`` accumulating ``log Z``. When a gradient is needed, the forward pass also runs
  the backward recursion ``b_t = P (Q_{t+1} * b_{t+1})`` (for small label sets in the same
  batched products as the forward one) and keeps both; the backward of the
  ``torch.autograd.Function`` then only combines them into the marginals (the gradient with
  respect to the emissions, start and end scores) and expected transition counts (one
  ``(L, B T) x (B T, L)`` product, that of the transitions): no autograd tape through T.

Scaled exp space is exact up to rounding as long as no number that carries probability
mass underflows. One step scales the total mass by a factor in ``[exp(-R) / L, L]`` and
the entries that matter stay within ``exp(-2 R) / L`` of the total, ``R`` being the widest
range of the transitions, start or end scores (emissions may be anything: they are shifted
per position). ``_plan`` turns this into how many steps may pass between renormalisations
in a dtype (``_steps_between_norms``), and picks: for up to ``_STEP_MATRIX_MAX_LABELS``
labels, step matrices ``P * Q_t`` (one batched product a step) in float64; for more labels,
the input dtype if its range allows a step, else float64; the reference recursion (in
float64 for float32 inputs) when even float64 does not (e.g. transitions of +-1e3, or
``-inf`` scores).
"""

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from engine_plugin.crf.masks import last_positions, reversed_index

# natural-log range of normal numbers that the exp space may use, with a margin (float32
# normals span exp(-87)..exp(88), float64 exp(-708)..exp(709))
_EXP_BUDGET = {torch.float32: 60.0, torch.float64: 600.0}
# Up to this many labels the step matrices P * Q_t are built (B, T, L, L) and a step is one
# batched matrix product; the recursion then costs little more than its Python loop, so it
# runs in float64 (whose range needs renormalising rarely, if ever, within a sentence).
_STEP_MATRIX_MAX_LABELS = 64


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


def _step_matrices(P: Tensor, Q: Tensor, Q_back: Optional[Tensor]) -> Tensor:
    """Forward step matrices ``P * Q_t[None, :]`` (B, T-1, L, L) of positions 1..T-1,
    followed along the batch by the backward ones ``(P * Q_back_k[None, :])^T`` if
    ``Q_back`` (B, T-1, L) is given: (2B, T-1, L, L), built in place."""
    B, T, L = Q.shape
    steps = Q.new_empty((2 * B if Q_back is not None else B), T - 1, L, L)
    torch.mul(P, Q[:, 1:].unsqueeze(2), out=steps[:B])
    if Q_back is not None:
        torch.mul(P.t(), Q_back.unsqueeze(3), out=steps[B:])
    return steps


def _chain(first: Tensor, steps, step, every: int):
    """Runs ``x_k = step(x_{k-1}, steps[k - 1])`` from ``x_0 = first`` (B, 1, L), dividing
    by the total every ``every`` steps. Returns the rows (B, K, L) and the norms (B, K)
    they were divided by (1 between renormalisations)."""
    B = first.shape[0]
    ones = first.new_ones(B, 1, 1)
    norms = [first.sum(2, keepdim=True)]
    x = first / norms[0]
    history = [x]
    for k, matrix in enumerate(steps, 1):
        x = step(x, matrix)
        if k % every:
            norms.append(ones)
        else:
            norms.append(x.sum(2, keepdim=True))
            x = x.div_(norms[-1])
        history.append(x)
    return torch.cat(history, 1), torch.cat(norms, 1).view(B, -1)


def _chains(space: _ExpSpace, last: Tensor, every: int, with_betas: bool):
    """Scaled forward and (if ``with_betas``) backward scores over all T positions.

    Returns ``alphas`` (B, T, L), rows ∝ exp(α_t); the norms ``c`` (B, T) they were divided
    by (renormalised every ``every`` steps); ``betas`` (B, T, L) or None, rows ∝ exp(β_t)
    on real positions (β_t excludes e_t and includes the end score). The backward runs in
    reversed alignment, so every sequence starts from its own last position without
    per-step masking. With step matrices both directions share one batched product a step.
    """
    B, T, L = space.Q.shape
    rows_of = (torch.arange(B, device=last.device).unsqueeze(1), reversed_index(last, T))
    Q_back = space.Q[rows_of][:, :-1]  # step k uses position last - k + 1
    first = (space.start * space.Q[:, 0]).unsqueeze(1)
    end = space.end.expand(B, 1, L)
    if L <= _STEP_MATRIX_MAX_LABELS:  # a_t = a_{t-1} M_t and b_t = b_{t+1} M_{t+1}^T
        steps = _step_matrices(space.P, space.Q, Q_back if with_betas else None)
        if with_betas:
            first = torch.cat([first, end], 0)
        rows, norms = _chain(first, steps.unbind(1), torch.bmm, every)
        betas = rows[B:][rows_of] if with_betas else None
        return rows[:B], norms[:B], betas
    P, P_t = space.P, space.P.t()  # a_t = (a_{t-1} P) * Q_t and b_t = (b_{t+1} * Q_{t+1}) P^T
    alphas, norms = _chain(first, space.Q[:, 1:].unsqueeze(2).unbind(1),
                           lambda a, q: torch.matmul(a, P).mul_(q), every)
    if not with_betas:
        return alphas, norms, None
    betas, _ = _chain(end, Q_back.unsqueeze(2).unbind(1),
                      lambda b, q: torch.matmul(q * b, P_t), every)
    return alphas, norms, betas[rows_of]


def _log_z(space: _ExpSpace, alphas: Tensor, norms: Tensor, mask: Tensor, last: Tensor):
    """log Z (B,) from the forward pass, read at each sequence's last position."""
    B, _, L = alphas.shape
    a_last = alphas[torch.arange(B, device=last.device), last]
    per_step = (norms.log() + space.e_max).masked_fill(~mask, 0).sum(1)
    return (per_step + space.s_max + space.w_max * last + space.f_max
            + torch.mv(a_last, space.end).log())


def _marginal_terms(alphas: Tensor, betas: Tensor, mask: Tensor):
    """Marginals (B, T, L) (0 on padding) and the row sums (B, T) of ``alphas * betas``."""
    products = alphas * betas
    sums = products.sum(2)
    marginals = (products / sums.unsqueeze(2)).masked_fill(~mask.unsqueeze(2), 0)
    return marginals, sums


def _transition_counts(P, Q, alphas, betas, norms, sums, weights, mask) -> Tensor:
    """``sum_b weights[b] sum_{t>0} p(y_{t-1} = i, y_t = j)``, (L, L).

    The pairwise marginal is ``alphas[t-1, i] P[i, j] Q[t, j] betas[t, j]`` divided by
    its total ``norms[t] * sums[t]``."""
    real = mask[:, 1:].unsqueeze(2)
    scale = (weights.unsqueeze(1) / (norms[:, 1:] * sums[:, 1:])).unsqueeze(2)
    left = (alphas[:, :-1] * scale).masked_fill(~real, 0).flatten(0, 1)
    right = (Q[:, 1:] * betas[:, 1:]).masked_fill(~real, 0).flatten(0, 1)
    return torch.mm(left.t(), right).mul_(P)


class _LogPartition(torch.autograd.Function):
    """log Z (B,) in scaled exp space, with the analytic backward (marginals)."""

    @staticmethod
    def forward(ctx, emissions, mask, transitions, start, end, every):
        space = _exp_space(emissions, transitions, start, end)
        last = last_positions(mask)
        alphas, norms, betas = _chains(space, last, every, any(ctx.needs_input_grad))
        ctx.save_for_backward(mask, last, alphas, norms, betas, space.P, space.Q)
        return _log_z(space, alphas, norms, mask, last)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        mask, last, alphas, norms, betas, P, Q = ctx.saved_tensors
        marginals, sums = _marginal_terms(alphas, betas, mask)
        grad_emissions = marginals * grad.view(-1, 1, 1)
        B, L = grad.shape[0], alphas.shape[2]
        grad_start = grad @ marginals[:, 0]
        grad_end = grad @ marginals[torch.arange(B, device=last.device), last]
        grad_transitions = _transition_counts(P, Q, alphas, betas, norms, sums, grad, mask)
        return grad_emissions, None, grad_transitions, grad_start, grad_end, None


class _Plan(NamedTuple):
    dtype: torch.dtype  # of the exp-space computation
    every: int  # renormalise every this many steps


def _plan(emissions: Tensor, transitions: Tensor, start: Tensor, end: Tensor):
    """How to run the exp space safely for these scores (``_Plan``), or None (use the
    reference recursion): small label sets always in float64, others in their own dtype
    when its exponent range suffices, else in float64."""
    if emissions.dtype not in _EXP_BUDGET:
        return None
    with torch.no_grad():
        ranges = torch.stack([p.max() - p.min() for p in (transitions, start, end)]).max()
        # the sum is finite iff every emission is (or it overflows: then take the reference)
        widest = torch.where(emissions.sum().isfinite(), ranges, float("inf")).item()
    L = transitions.shape[0]
    small = L <= _STEP_MATRIX_MAX_LABELS
    for dtype in ((torch.float64,) if small else (emissions.dtype, torch.float64)):
        every = _steps_between_norms(widest, L, _EXP_BUDGET[dtype])
        if every >= 1:
            return _Plan(dtype, every)
    return None


def _steps_between_norms(widest: float, num_labels: int, budget: float) -> int:
    """How many unnormalised steps stay within ``budget`` (natural-log range of the dtype).

    One step scales the total mass by a factor in ``[exp(-R) / L, L]``; entries that carry
    probability are within ``exp(-2 R) / L`` of the total (``R``: widest score range). So
    k steps are safe while ``k (R + log L) + 2 R + log L <= budget``. 0: not even one."""
    if not math.isfinite(widest):
        return 0
    log_l = math.log(num_labels) if num_labels > 1 else 0.0
    return int((budget - 2 * widest - log_l) // (widest + log_l + 1e-6))


def _wide(dtype):
    """The dtype of the reference fallback: float32 widened to float64 (scores of +-1e4
    leave float32 too few digits for the differences the marginals are made of)."""
    return torch.float64 if dtype == torch.float32 else dtype


def log_partition(emissions: Tensor, mask: Tensor, transitions: Tensor, start: Tensor,
                  end: Tensor) -> Tensor:
    """log Z (B,), differentiable with respect to all potentials (see the module docstring)."""
    if emissions.shape[1] == 0:
        raise ValueError("log_partition needs at least one position (T >= 1)")
    plan = _plan(emissions, transitions, start, end)
    dtype = plan.dtype if plan else _wide(emissions.dtype)
    args = [p.to(dtype) for p in (emissions, transitions, start, end)]
    if plan is None:
        log_z = log_partition_reference(args[0], mask, *args[1:])
    else:
        log_z = _LogPartition.apply(args[0], mask, *args[1:], plan.every)
    return log_z.to(emissions.dtype)


def marginals(emissions: Tensor, mask: Tensor, transitions: Tensor, start: Tensor,
              end: Tensor) -> Tensor:
    """p(y_t = l | x), (B, T, L): rows sum to 1 on real tokens, 0 on padding."""
    if emissions.shape[1] == 0:
        raise ValueError("marginals need at least one position (T >= 1)")
    plan = _plan(emissions, transitions, start, end)
    if plan is None:
        wide = [p.detach().to(_wide(emissions.dtype)) for p in (emissions, transitions, start, end)]
        with torch.enable_grad():
            leaf = wide[0].requires_grad_(True)
            log_z = log_partition_reference(leaf, mask, *wide[1:])
            grad, = torch.autograd.grad(log_z.sum(), leaf)
        return grad.masked_fill(~mask.unsqueeze(2), 0).to(emissions.dtype)
    with torch.no_grad():
        space = _exp_space(*(p.to(plan.dtype) for p in (emissions, transitions, start, end)))
        last = last_positions(mask)
        alphas, _, betas = _chains(space, last, plan.every, with_betas=True)
        result, _ = _marginal_terms(alphas, betas, mask)
    return result.to(emissions.dtype)
