"""Relaxation operators O1/O2 of ENGINE (Tu et al., 2020, Table 1).

An operator maps logits ``z`` of shape ``(..., V)`` (typically ``(B, T, V)``) to a tensor of
the same shape whose rows lie on the simplex; that tensor is what an energy consumes. With
``q = softmax(z)``, Gumbel noise ``g = -log(-log u)``, ``u ~ Uniform(0, 1)``, and
``q~ = softmax((z + g) / tau)``:

======  ======================  =========================================
name    forward value           backward (Jacobian used for dL/dz)
======  ======================  =========================================
``sx``  ``q``                   exact
``stl`` ``onehot(argmax z)``    identity: dL/dz = dL/dO
``sg``  ``onehot(argmax q~)``   dq~/dz (straight-through Gumbel-softmax)
``st``  ``onehot(argmax q)``    dq/dz (straight-through softmax)
``gx``  ``q~``                  exact
======  ======================  =========================================

The straight-through operators return ``hard + (soft - soft.detach())``: the bracket is
exactly zero in the forward pass, so forward values are exact one-hots, while the gradient
is that of ``soft``. The argmax is taken over the logits (``z`` or ``z + g``), which has
the same maximiser as the softmax but cannot be blurred by softmax rounding, so ``st`` and
``stl`` have identical forward values. Only ``sg`` and ``gx`` draw noise, and every call
draws fresh noise, so O1 and O2 receive independent samples.
"""

from typing import Callable, Dict, Optional

import torch
from torch import Tensor

OPERATORS = ("sx", "stl", "sg", "st", "gx")


def sample_gumbel(shape_like: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Standard Gumbel noise ``-log(-log u)`` with the shape, dtype and device of ``shape_like``.

    ``u`` is drawn from ``generator`` (which must live on ``shape_like``'s device) or, if it
    is None, from torch's global RNG for that device. Half-precision dtypes are sampled in
    float32 and cast at the end (a bfloat16 ``u`` has so few values below 1 that the right
    tail of the noise is cut off and its mean is visibly biased). ``u`` is clamped to
    ``[tiny, 1 - eps]`` of the sampling dtype, so the noise is always finite.
    """
    dtype = torch.promote_types(shape_like.dtype, torch.float32)
    u = torch.rand(shape_like.shape, generator=generator, dtype=dtype, device=shape_like.device)
    finfo = torch.finfo(dtype)
    u = u.clamp(min=finfo.tiny, max=1.0 - finfo.eps)
    return (-torch.log(-torch.log(u))).to(shape_like.dtype)


def _one_hot_argmax(scores: Tensor) -> Tensor:
    """One-hot (same dtype/device as ``scores`` (..., V)) of the argmax over the last dim."""
    index = scores.argmax(dim=-1, keepdim=True)
    return torch.zeros_like(scores).scatter_(-1, index, 1.0)


def _straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward value ``hard`` (exactly), gradient that of ``soft``."""
    return hard + (soft - soft.detach())


class _IdentityStraightThrough(torch.autograd.Function):
    """``onehot(argmax z)`` forward, identity backward.

    Written as a Function rather than ``hard + (z - z.detach())`` because that bracket is
    NaN wherever a logit is infinite (e.g. a vocabulary entry masked with ``-inf``).
    """

    @staticmethod
    def forward(ctx, logits: Tensor) -> Tensor:
        return _one_hot_argmax(logits)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:
        return grad_output


def _perturbed(logits: Tensor, generator: Optional[torch.Generator], temperature: float) -> Tensor:
    return (logits + sample_gumbel(logits, generator)) / temperature


def _sx(logits, generator, temperature):
    return torch.softmax(logits, dim=-1)


def _stl(logits, generator, temperature):
    return _IdentityStraightThrough.apply(logits)


def _sg(logits, generator, temperature):
    perturbed = _perturbed(logits, generator, temperature)
    return _straight_through(_one_hot_argmax(perturbed), torch.softmax(perturbed, dim=-1))


def _st(logits, generator, temperature):
    return _straight_through(_one_hot_argmax(logits), torch.softmax(logits, dim=-1))


def _gx(logits, generator, temperature):
    return torch.softmax(_perturbed(logits, generator, temperature), dim=-1)


_IMPLEMENTATIONS: Dict[str, Callable[[Tensor, Optional[torch.Generator], float], Tensor]] = {
    "sx": _sx,
    "stl": _stl,
    "sg": _sg,
    "st": _st,
    "gx": _gx,
}


def relax(
    logits: Tensor,
    name: str,
    generator: Optional[torch.Generator] = None,
    temperature: float = 1.0,
) -> Tensor:
    """Applies relaxation operator ``name`` (one of ``OPERATORS``, any case) to ``logits``.

    Args:
        logits: ``(..., V)`` floating tensor, normalised over the last dimension.
        name: ``sx``, ``stl``, ``sg``, ``st`` or ``gx`` (see the module docstring).
        generator: RNG for the Gumbel noise of ``sg``/``gx``, on ``logits``' device; None
            uses torch's global RNG. The other operators draw no noise.
        temperature: ``tau > 0`` dividing ``z + g`` in ``sg``/``gx``; unused by the others.

    Returns:
        ``(..., V)`` tensor of ``logits``' dtype and device; every row sums to 1.
    """
    key = str(name).lower()
    if key not in _IMPLEMENTATIONS:
        raise ValueError(f"unknown relaxation operator {name!r}; valid names: {', '.join(OPERATORS)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return _IMPLEMENTATIONS[key](logits, generator, temperature)
