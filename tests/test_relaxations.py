import math

import pytest
import torch
from torch.autograd.functional import vjp

from engine_plugin.relaxations import OPERATORS, relax, sample_gumbel

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _logits(device, shape=(3, 5, 7), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype).mul(2.0).to(device)


def _gen(device, seed):
    return torch.Generator(device=device).manual_seed(seed)


def _reference_gumbel(z, seed):
    """The same noise as ``sample_gumbel(z, _gen(z.device, seed))``, computed by hand."""
    u = torch.rand(z.shape, generator=_gen(z.device, seed), dtype=z.dtype, device=z.device)
    return -torch.log(-torch.log(u))


def _one_hot(index, like):
    return torch.nn.functional.one_hot(index, like.shape[-1]).to(like.dtype)


def _assert_one_hot(y):
    assert torch.all((y == 0) | (y == 1))
    assert torch.equal(y.sum(-1), torch.ones_like(y[..., 0]))


# ---------------------------------------------------------------- forward values


@pytest.mark.parametrize("device", DEVICES)
def test_sx_is_softmax(device):
    z = _logits(device)
    torch.testing.assert_close(relax(z, "sx"), torch.softmax(z, -1))


@pytest.mark.parametrize("device", DEVICES)
def test_st_and_stl_are_exact_one_hot_of_argmax(device):
    z = _logits(device)
    expected = _one_hot(z.argmax(-1), z)
    st, stl = relax(z.requires_grad_(), "st"), relax(z, "stl")
    assert torch.equal(st, expected)
    assert torch.equal(stl, expected)
    assert torch.equal(st, stl)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_gumbel_operators_match_hand_computed_perturbation(device, temperature):
    z = _logits(device).requires_grad_()
    perturbed = (z.detach() + _reference_gumbel(z, seed=3)) / temperature
    gx = relax(z, "gx", generator=_gen(device, 3), temperature=temperature)
    sg = relax(z, "sg", generator=_gen(device, 3), temperature=temperature)
    torch.testing.assert_close(gx, torch.softmax(perturbed, -1))
    torch.testing.assert_close(gx.sum(-1), torch.ones_like(gx[..., 0]))
    assert torch.equal(sg, _one_hot(perturbed.argmax(-1), z))
    _assert_one_hot(sg)
    # the noise actually changes the answer somewhere
    assert not torch.equal(sg, relax(z, "st"))


def test_operator_names_are_case_insensitive():
    z = _logits("cpu")
    for name in OPERATORS:
        torch.testing.assert_close(
            relax(z, name.upper(), generator=_gen("cpu", 1)), relax(z, name, generator=_gen("cpu", 1))
        )


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="sx, stl, sg, st, gx"):
        relax(_logits("cpu"), "softmax")


def test_non_positive_temperature_is_rejected():
    with pytest.raises(ValueError, match="temperature"):
        relax(_logits("cpu"), "gx", temperature=0.0)


def test_stl_handles_infinite_logits():
    z = _logits("cpu", shape=(4, 6)).requires_grad_()
    masked = z.masked_fill(torch.arange(6) == 2, float("-inf"))
    y = relax(masked, "stl")
    _assert_one_hot(y)
    G = torch.randn_like(y)
    (y * G).sum().backward()
    expected = G.clone()
    expected[:, 2] = 0  # masked_fill blocks the gradient, not the operator
    assert torch.equal(z.grad, expected)


# ---------------------------------------------------------------- gradients


def _grad(z, name, G, **kwargs):
    z = z.detach().clone().requires_grad_()
    (relax(z, name, **kwargs) * G).sum().backward()
    return z.grad


@pytest.mark.parametrize("device", DEVICES)
def test_st_gradient_is_softmax_vjp(device):
    z = _logits(device)
    G = torch.randn_like(z)
    _, expected = vjp(lambda x: torch.softmax(x, -1), z, G)
    torch.testing.assert_close(_grad(z, "st", G), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_stl_gradient_is_identity(device):
    z = _logits(device)
    G = torch.randn_like(z)
    assert torch.equal(_grad(z, "stl", G), G)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_sg_gradient_is_vjp_of_perturbed_softmax(device, temperature):
    z = _logits(device)
    G = torch.randn_like(z)
    g = _reference_gumbel(z, seed=5)
    _, expected = vjp(lambda x: torch.softmax((x + g) / temperature, -1), z, G)
    got = _grad(z, "sg", G, generator=_gen(device, 5), temperature=temperature)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_sx_passes_gradcheck(device):
    z = _logits(device, shape=(2, 3, 4)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: relax(x, "sx"), (z,))


@pytest.mark.parametrize("device", DEVICES)
def test_gx_passes_gradcheck_with_fixed_noise(device):
    z = _logits(device, shape=(2, 3, 4)).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: relax(x, "gx", generator=_gen(device, 11), temperature=0.8), (z,)
    )


# ---------------------------------------------------------------- randomness


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["sg", "gx"])
def test_seedability(device, name):
    z = _logits(device)
    a = relax(z, name, generator=_gen(device, 7))
    assert torch.equal(a, relax(z, name, generator=_gen(device, 7)))
    assert not torch.equal(a, relax(z, name, generator=_gen(device, 8)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["sg", "gx"])
def test_global_rng_is_used_without_generator(device, name):
    z = _logits(device)
    torch.manual_seed(123)
    a = relax(z, name)
    torch.manual_seed(123)
    assert torch.equal(a, relax(z, name))
    assert not torch.equal(a, relax(z, name))


@pytest.mark.parametrize("device", DEVICES)
def test_successive_calls_draw_independent_noise(device):
    z = _logits(device)
    gen = _gen(device, 0)
    first, second = relax(z, "gx", generator=gen), relax(z, "gx", generator=gen)
    assert not torch.equal(first, second)
    torch.testing.assert_close(second, torch.softmax(z + _second_draw(z, seed=0), -1))


def _second_draw(z, seed):
    gen = _gen(z.device, seed)
    sample_gumbel(z, gen)
    return sample_gumbel(z, gen)


@pytest.mark.parametrize("name", ["sx", "stl", "st"])
def test_deterministic_operators_draw_no_noise(name):
    gen = _gen("cpu", 0)
    state = gen.get_state()
    relax(_logits("cpu"), name, generator=gen)
    assert torch.equal(gen.get_state(), state)


def test_sg_samples_follow_softmax():
    """Gumbel-max trick: onehot(argmax(z + g)) is a sample from softmax(z)."""
    z = torch.tensor([1.0, 0.0, -1.0, 2.0])
    samples = relax(z.expand(40000, 4), "sg", generator=_gen("cpu", 0))
    torch.testing.assert_close(samples.mean(0), torch.softmax(z, -1), atol=0.01, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_sample_gumbel_shape_dtype_device_and_moments(device, dtype):
    like = torch.empty(200, 500, dtype=dtype, device=device)
    g = sample_gumbel(like, _gen(device, 0))
    assert g.shape == like.shape and g.dtype == dtype and g.device == like.device
    assert torch.isfinite(g).all()
    euler_gamma = 0.5772156649
    assert abs(g.double().mean().item() - euler_gamma) < 0.02
    assert abs(g.double().var().item() - math.pi**2 / 6) < 0.05


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_sample_gumbel_is_finite_at_extreme_uniforms(monkeypatch, dtype):
    def extreme_rand(shape, **kwargs):
        return torch.tensor([0.0, 1.0, 0.5], dtype=kwargs["dtype"], device=kwargs["device"])

    monkeypatch.setattr(torch, "rand", extreme_rand)
    g = sample_gumbel(torch.empty(3, dtype=dtype))
    assert torch.isfinite(g).all()
    assert g[0] < g[2] < g[1]
