"""log Z, marginals and k-best of ``LinearChainCRF`` against brute force and the plain
log-sum-exp recursion; numerical safety of the scaled exp-space forward-backward."""

import pytest
import torch

from engine_plugin.crf import LinearChainCRF
from engine_plugin.crf import forward_backward as fb
from tests.crf_brute_force import all_labellings, random_problem


def _reference(crf, emissions, mask):
    return fb.log_partition_reference(emissions, mask, crf.transitions, crf.start, crf.end)


@pytest.mark.parametrize("seed", range(4))
def test_log_partition_and_marginals_match_brute_force(seed):
    crf, emissions, mask, lengths = random_problem(seed, batch=5, max_len=4, labels=3)
    log_z, marginals = crf.log_partition(emissions, mask), crf.marginals(emissions, mask)
    for b in range(emissions.shape[0]):
        tags, energies = zip(*all_labellings(crf, emissions, lengths, b))
        probs = torch.softmax(-torch.stack(energies), 0)
        assert torch.allclose(log_z[b], torch.logsumexp(-torch.stack(energies), 0))
        expected = torch.zeros(emissions.shape[1:], dtype=torch.float64)
        for path, p in zip(tags, probs):
            expected[torch.arange(len(path)), torch.tensor(path)] += p
        assert torch.allclose(marginals[b], expected)
    assert torch.allclose(_reference(crf, emissions, mask), log_z)


@pytest.mark.parametrize("seed", range(4))
def test_kbest_matches_brute_force(seed):
    crf, emissions, mask, lengths = random_problem(seed, batch=5, max_len=4, labels=3)
    k = 7  # a sentence of one token has only 3 labellings
    labels, energies = crf.kbest(emissions, mask, k=k)
    assert labels.shape == (5, k, 4) and energies.shape == (5, k)
    for b in range(5):
        ranked = sorted(all_labellings(crf, emissions, lengths, b), key=lambda p: p[1].item())
        n, found = int(lengths[b]), min(k, len(ranked))
        assert torch.allclose(energies[b, :found], torch.stack([e for _, e in ranked[:found]]))
        assert (energies[b, found:] == float("inf")).all()
        assert [tuple(p[:n].tolist()) for p in labels[b, :found]] == [t for t, _ in ranked[:found]]
        assert (labels[b, :, n:] == 0).all() and (labels[b, found:] == 0).all()


@pytest.mark.parametrize("num_labels", [1, 4, 40])  # 40: Viterbi's value-only backtrace
def test_kbest_one_is_viterbi(num_labels):
    crf, emissions, mask, _ = random_problem(2, batch=6, max_len=9, labels=num_labels)
    paths, best = crf.viterbi(emissions, mask)
    labels, energies = crf.kbest(emissions, mask, k=1)
    assert torch.equal(labels[:, 0], paths)
    assert torch.allclose(energies[:, 0], best)
    more, _ = crf.kbest(emissions, mask, k=3)
    assert torch.equal(more[:, 0], paths)


def test_kbest_energies_increase_and_paths_differ():
    crf, emissions, mask, _ = random_problem(3, batch=4, max_len=12, labels=30, dtype=torch.float32)
    labels, energies = crf.kbest(emissions, mask, k=6)
    assert (energies[:, 1:] >= energies[:, :-1]).all()
    assert torch.allclose(energies, torch.stack(
        [crf.energy(emissions, labels[:, r], mask) for r in range(6)], 1))
    for b in range(4):
        assert len({tuple(p.tolist()) for p in labels[b]}) == 6


@pytest.mark.parametrize("num_labels", [1, 5, 17, 401])
def test_fast_log_partition_equals_the_log_space_recursion_in_float32(num_labels):
    crf, emissions, mask, _ = random_problem(5, batch=10, max_len=30, labels=num_labels,
                                             dtype=torch.float32)
    plan = fb._plan(emissions, *crf._params())
    assert plan.dtype == (torch.float32 if num_labels == 401 else torch.float64)
    fast, reference = crf.log_partition(emissions, mask), _reference(crf, emissions, mask)
    assert torch.allclose(fast, reference, rtol=1e-5, atol=0)
    marginals = crf.marginals(emissions, mask)
    assert torch.allclose(marginals.sum(2), mask.float(), atol=1e-5)


@pytest.mark.parametrize("num_labels", [6, 100])  # step matrices / one (L, L) product a step
@pytest.mark.parametrize("scale", [0.5, 2.0, 3.5, 6.0, 20.0, 60.0])  # score ranges ~4 to ~500:
def test_exp_space_is_accurate_up_to_its_limits(num_labels, scale):  # every plan, reference
    crf, emissions, mask, _ = random_problem(6, batch=4, max_len=20, labels=num_labels,
                                             dtype=torch.float32, scale=scale)
    emissions.requires_grad_()
    log_z = crf.log_partition(emissions, mask)
    grads = torch.autograd.grad(log_z.sum(), [emissions, *crf.parameters()])
    wide = crf.double()
    emissions64 = emissions.detach().double().requires_grad_()
    truth = _reference(wide, emissions64, mask)
    true_grads = torch.autograd.grad(truth.sum(), [emissions64, *wide.parameters()])
    assert torch.allclose(log_z.double(), truth, rtol=1e-6)
    for g, t in zip(grads, true_grads):
        assert torch.allclose(g.double(), t, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_potentials_stay_finite(dtype):
    g = torch.Generator().manual_seed(0)
    crf = LinearChainCRF(7).to(dtype)
    with torch.no_grad():
        crf.transitions.copy_(torch.randint(-1, 2, (7, 7), generator=g) * 1e3)
        crf.start.copy_(torch.randint(-1, 2, (7,), generator=g) * 1e3)
        crf.end.copy_(torch.randint(-1, 2, (7,), generator=g) * 1e3)
    emissions = (torch.randint(-1, 2, (5, 6, 7), generator=g) * 1e4).to(dtype).requires_grad_()
    mask = torch.arange(6)[None] < torch.tensor([6, 1, 3, 5, 2])[:, None]
    log_z = crf.log_partition(emissions, mask)
    grads = torch.autograd.grad(log_z.sum(), [emissions, *crf.parameters()])
    marginals = crf.marginals(emissions, mask)
    for value in (log_z, marginals, *grads):
        assert torch.isfinite(value).all()
    assert torch.allclose(marginals.sum(2), mask.to(dtype), atol=1e-4)
    truth = _reference(crf.double(), emissions.double(), mask)
    assert torch.allclose(log_z.double(), truth, rtol=1e-6)


@pytest.mark.parametrize("shape", [(3, 5, 4), (2, 1, 3), (3, 4, 1)])  # ragged, T = 1, L = 1
def test_fast_log_partition_gradcheck(shape):
    crf, emissions, mask, _ = random_problem(7, *shape)
    params = [p.detach().clone().requires_grad_() for p in crf._params()]
    emissions.requires_grad_()

    def log_z(em, w, s, f):
        assert fb._plan(em, w, s, f).dtype == torch.float64
        return fb.log_partition(em, mask, w, s, f)

    assert torch.autograd.gradcheck(log_z, (emissions, *params))


def test_gradient_of_log_z_is_the_marginals_and_matches_autograd_of_the_recursion():
    crf, emissions, mask, _ = random_problem(8, batch=6, max_len=7, labels=5)
    emissions.requires_grad_()
    fast = torch.autograd.grad(crf.log_partition(emissions, mask).sum(),
                               [emissions, *crf.parameters()])
    slow = torch.autograd.grad(_reference(crf, emissions, mask).sum(),
                               [emissions, *crf.parameters()])
    for a, b in zip(fast, slow):
        assert torch.allclose(a, b)
    assert torch.allclose(fast[0], crf.marginals(emissions, mask))


def test_empty_sequences_and_bad_k_raise():
    crf = LinearChainCRF(3)
    with pytest.raises(ValueError, match="T >= 1"):
        crf.log_partition(torch.zeros(2, 0, 3))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        crf.kbest(torch.zeros(2, 3, 3), k=0)
