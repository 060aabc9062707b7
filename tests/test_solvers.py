"""Gradient descent, tailoring and the inference report against a CRF energy."""

import copy

import pytest
import torch
import torch.nn as nn

from engine_plugin.crf import LinearChainCRF
from engine_plugin.energies.crf_energy import CRFContext, CRFEnergy
from engine_plugin.report import InferenceReport
from engine_plugin.solvers.gradient_descent import descend, initial_logits
from engine_plugin.solvers.tailoring import tailor

B, T, L, V = 3, 6, 4, 11


class EmissionModel(nn.Module):
    """A stand-in tagging model: emissions are an embedding of the word ids; pad id 1."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(V, L)
        self.crf = LinearChainCRF(L)

    def forward(self, src_tokens, src_lengths, **unused):
        return self.embed(src_tokens)

    def padding_mask(self, src_tokens):
        return src_tokens.ne(1)


def _batch():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(2, V, (B, T), generator=g)
    lengths = torch.tensor([T, T - 2, 1])
    tokens[1, T - 2 :] = 1
    tokens[2, 1:] = 1
    return {"src_tokens": tokens, "src_lengths": lengths}


def test_gd_reaches_viterbi_on_a_well_separated_optimum():
    model = EmissionModel()
    with torch.no_grad():
        model.embed.weight.mul_(8)  # strong unary scores: a single clear optimum
        model.crf.transitions.mul_(0.1)
    energy = CRFEnergy(model)
    net_input = _batch()
    mask = model.padding_mask(net_input["src_tokens"])
    context = energy.condition(net_input)
    best, best_energy = energy.exact_minimum(context, mask)
    z = descend(energy, context, mask, initial_logits((B, T, L), "zero", "cpu"), steps=30,
                lr=1.0)[-1]
    found = z.argmax(-1).masked_fill(~mask, 0)
    assert torch.equal(found, best)
    relaxed = energy.relaxed_energy(context, z, mask)
    assert torch.allclose(relaxed, best_energy, atol=1e-2)
    # descent lowers the relaxed energy from the uniform start
    start = energy.relaxed_energy(context, torch.zeros(B, T, L), mask)
    assert (relaxed < start).all()


def test_gd_snapshots_and_energy_is_frozen():
    model = EmissionModel()
    energy = CRFEnergy(model)
    before = copy.deepcopy(model.state_dict())
    net_input = _batch()
    mask = model.padding_mask(net_input["src_tokens"])
    context = energy.condition(net_input)
    init = initial_logits((B, T, L), "random", "cpu", torch.Generator().manual_seed(1))
    zs = descend(energy, context, mask, init, steps=4, lr=0.5, snapshot_steps=[0, 2, 4])
    assert torch.equal(zs[0], init) and torch.equal(zs[2], zs[3])
    assert not torch.equal(zs[1], init)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in model.parameters())


class TinyInfnet(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.embed = nn.Embedding(V, L)

    def forward(self, src_tokens, src_lengths, **unused):
        return self.embed(src_tokens)

    def padding_mask(self, src_tokens):
        return src_tokens.ne(1)


def test_tailoring_lowers_energy_and_leaves_the_shared_infnet_unchanged():
    energy = CRFEnergy(EmissionModel())
    infnet = TinyInfnet()
    before = copy.deepcopy(infnet.state_dict())
    net_input = _batch()
    one = {"src_tokens": net_input["src_tokens"][:1], "src_lengths": net_input["src_lengths"][:1]}
    mask = infnet.padding_mask(one["src_tokens"])
    context = energy.condition(one)
    plain = energy.relaxed_energy(context, infnet(**one), mask)
    tailored = energy.relaxed_energy(context, tailor(infnet, energy, one, steps=10, lr=0.5), mask)
    assert (tailored < plain).all()
    for name, value in infnet.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in infnet.parameters())


def test_report_refuses_energy_below_the_exact_minimum():
    report = InferenceReport("test")
    report.add(torch.tensor([-5.0, -3.0]), minimum=torch.tensor([-5.0, -4.0]))
    assert "search_error=0.5000" in report.summary()
    assert "zero_search_error=50.0%" in report.summary()
    with pytest.raises(RuntimeError, match="below the exact minimum"):
        report.add(torch.tensor([-6.0]), minimum=torch.tensor([-5.0]))


def test_crf_energy_context_is_not_differentiable():
    energy = CRFEnergy(EmissionModel())
    context = energy.condition(_batch())
    assert isinstance(context, CRFContext) and not context.emissions.requires_grad
