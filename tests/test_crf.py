import itertools

import pytest
import torch

from engine_plugin.crf import LinearChainCRF


def _random_problem(seed, batch=4, max_len=4, labels=3):
    g = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(labels)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    emissions = torch.randn(batch, max_len, labels, generator=g, dtype=torch.float64)
    crf = crf.double()
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    lengths[0] = max_len
    mask = torch.arange(max_len)[None, :] < lengths[:, None]
    return crf, emissions, mask, lengths


def _all_labellings(crf, emissions, lengths, b):
    n = int(lengths[b])
    for tags in itertools.product(range(crf.num_labels), repeat=n):
        padded = torch.zeros(1, emissions.shape[1], dtype=torch.long)
        padded[0, :n] = torch.tensor(tags)
        mask = torch.arange(emissions.shape[1])[None, :] < n
        yield padded, crf.energy(emissions[b : b + 1], padded, mask)[0]


@pytest.mark.parametrize("seed", range(5))
def test_log_partition_matches_brute_force(seed):
    crf, emissions, mask, lengths = _random_problem(seed)
    log_z = crf.log_partition(emissions, mask)
    for b in range(emissions.shape[0]):
        energies = torch.stack([e for _, e in _all_labellings(crf, emissions, lengths, b)])
        assert torch.allclose(log_z[b], torch.logsumexp(-energies, 0))


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_matches_brute_force(seed):
    crf, emissions, mask, lengths = _random_problem(seed)
    paths, energies = crf.viterbi(emissions, mask)
    for b in range(emissions.shape[0]):
        best_tags, best_energy = min(_all_labellings(crf, emissions, lengths, b), key=lambda p: p[1])
        n = int(lengths[b])
        assert paths[b, :n].tolist() == best_tags[0, :n].tolist()
        assert (paths[b, n:] == 0).all()
        assert torch.allclose(energies[b], best_energy)
    # the reported energy is the energy of the returned path
    assert torch.allclose(energies, crf.energy(emissions, paths, mask))


def test_viterbi_energy_below_gold_and_random():
    crf, emissions, mask, _ = _random_problem(7, batch=16, max_len=9, labels=5)
    _, best = crf.viterbi(emissions, mask)
    for seed in range(20):
        other = torch.randint(0, 5, mask.shape, generator=torch.Generator().manual_seed(seed))
        assert (crf.energy(emissions, other, mask) >= best - 1e-9).all()


def test_relaxed_energy_equals_one_hot_energy():
    crf, emissions, mask, _ = _random_problem(3, batch=6, max_len=7, labels=4)
    tags = torch.randint(0, 4, mask.shape)
    one_hot = torch.nn.functional.one_hot(tags, 4).double()
    # garbage on padded positions must not matter
    one_hot = torch.where(mask[..., None], one_hot, torch.full_like(one_hot, 0.3))
    assert torch.allclose(crf.energy(emissions, tags, mask), crf.energy(emissions, one_hot, mask))


def test_relaxed_energy_is_linear_in_each_position():
    crf, emissions, mask, _ = _random_problem(4, batch=1, max_len=3, labels=3)
    mask = torch.ones_like(mask)
    y = torch.softmax(torch.randn(1, 3, 3, dtype=torch.float64), -1)
    # E is multilinear: E(y) = sum over labellings of prod_t y_t(i_t) * E(i) when y is a
    # product distribution, because E is a sum of unary and pairwise terms.
    expected = 0.0
    for tags in itertools.product(range(3), repeat=3):
        prob = y[0, 0, tags[0]] * y[0, 1, tags[1]] * y[0, 2, tags[2]]
        expected = expected + prob * crf.energy(emissions, torch.tensor([tags]), mask)[0]
    assert torch.allclose(crf.energy(emissions, y, mask)[0], expected)


def test_batching_invariance():
    crf, emissions, mask, lengths = _random_problem(11, batch=5, max_len=8, labels=6)
    paths, energies = crf.viterbi(emissions, mask)
    log_z = crf.log_partition(emissions, mask)
    for b in range(5):
        n = int(lengths[b])
        p1, e1 = crf.viterbi(emissions[b : b + 1, :n])
        assert p1[0].tolist() == paths[b, :n].tolist()
        assert torch.allclose(e1[0], energies[b])
        assert torch.allclose(crf.log_partition(emissions[b : b + 1, :n])[0], log_z[b])


def test_nll_gradcheck():
    crf, emissions, mask, _ = _random_problem(5, batch=3, max_len=4, labels=3)
    tags = torch.randint(0, 3, mask.shape, generator=torch.Generator().manual_seed(0))
    emissions.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda em: crf.nll(em, tags, mask), (emissions,))
    # gradient of log Z with respect to emissions is the marginal: rows sum to 1 on real tokens
    marg = torch.autograd.grad(crf.log_partition(emissions, mask).sum(), emissions)[0]
    assert torch.allclose(marg.sum(-1), mask.double())


def test_nll_gradcheck_transitions():
    crf, emissions, mask, _ = _random_problem(6, batch=3, max_len=4, labels=3)
    tags = torch.randint(0, 3, mask.shape, generator=torch.Generator().manual_seed(1))
    assert torch.autograd.gradcheck(
        lambda w, s, f: _nll_with(crf, emissions, tags, mask, w, s, f),
        (crf.transitions.detach().clone().requires_grad_(),
         crf.start.detach().clone().requires_grad_(),
         crf.end.detach().clone().requires_grad_()),
    )


def _nll_with(crf, emissions, tags, mask, w, s, f):
    other = LinearChainCRF(crf.num_labels).double()
    del other.transitions, other.start, other.end
    other.transitions, other.start, other.end = w, s, f
    return other.nll(emissions, tags, mask)


def test_bad_masks_raise():
    crf = LinearChainCRF(3)
    em = torch.randn(2, 3, 3)
    with pytest.raises(ValueError, match="at least one token"):
        crf.viterbi(em, torch.tensor([[True, True, True], [False, False, False]]))
    with pytest.raises(ValueError, match="contiguous"):
        crf.viterbi(em, torch.tensor([[True, False, True], [True, True, True]]))
    with pytest.raises(ValueError, match="does not match"):
        crf.energy(em, torch.zeros(2, 3, 4))
