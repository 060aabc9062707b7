"""``label_constraints``: scheme detection from label names, and constrained decoding."""

import pytest
import torch

from engine_plugin.crf import detect_scheme, label_constraints
from tests.crf_brute_force import all_labellings, permitted, random_problem

BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = ["O", "B-X", "I-X", "E-X", "S-X"]


def _allowed(names, a, b):
    transitions, _, _ = label_constraints(names)
    return bool(transitions[names.index(a), names.index(b)])


def test_bio_detection_and_rules():
    assert detect_scheme(BIO) == "bio"
    transitions, start, end = label_constraints(BIO)
    assert start.tolist() == [True, True, False, True, False]
    assert end.all()
    assert _allowed(BIO, "B-PER", "I-PER") and _allowed(BIO, "I-PER", "I-PER")
    assert not _allowed(BIO, "O", "I-PER") and not _allowed(BIO, "B-LOC", "I-PER")
    assert not _allowed(BIO, "I-LOC", "I-PER")
    # O and B-* may follow anything
    assert transitions[:, [0, 1, 3]].all()
    assert int(transitions.sum()) == 5 * 3 + 2 * 2


def test_bioes_detection_and_rules():
    assert detect_scheme(BIOES) == "bioes"
    _, start, end = label_constraints(BIOES)
    assert start.tolist() == [True, True, False, False, True]
    assert end.tolist() == [True, False, False, True, True]
    allowed = {(a, b) for a in BIOES for b in BIOES if _allowed(BIOES, a, b)}
    outside, inside = ("O", "E-X", "S-X"), ("B-X", "I-X")
    expected = {(a, b) for a in outside for b in ("O", "B-X", "S-X")}
    expected |= {(a, b) for a in inside for b in ("I-X", "E-X")}
    assert allowed == expected
    # chunk types must agree, and BILOU is read as BIOES
    assert not _allowed(["O", "B-X", "E-Y", "B-Y", "E-X"], "B-X", "E-Y")
    assert detect_scheme(["O", "B-X", "I-X", "L-X", "U-X"]) == "bioes"


@pytest.mark.parametrize("names", [["NN", "VB", "*"], ["O"], ["O", "B-X", "NN"], ["B", "I"]])
def test_other_label_sets_allow_everything(names):
    assert detect_scheme(names) == "none"
    transitions, start, end = label_constraints(names)
    assert transitions.shape == (len(names), len(names))
    assert transitions.all() and start.all() and end.all()


@pytest.mark.parametrize("seed", range(3))
def test_constrained_decoding_matches_brute_force_over_allowed_paths(seed):
    crf, emissions, mask, lengths = random_problem(seed, batch=5, max_len=4, labels=5)
    constraints = label_constraints(BIOES)
    paths, best = crf.viterbi(emissions, mask, constraints=constraints)
    labels, energies = crf.kbest(emissions, mask, k=4, constraints=constraints)
    for b in range(5):
        n = int(lengths[b])
        ranked = sorted(all_labellings(crf, emissions, lengths, b, constraints),
                        key=lambda p: p[1].item())
        assert tuple(paths[b, :n].tolist()) == ranked[0][0]
        assert torch.allclose(best[b], ranked[0][1])
        found = min(4, len(ranked))
        assert [tuple(p[:n].tolist()) for p in labels[b, :found]] == [t for t, _ in ranked[:found]]
        assert (energies[b, found:] == float("inf")).all()


@pytest.mark.parametrize("num_labels", [9, 40])  # backpointer and value-only Viterbi
def test_constrained_paths_never_take_a_forbidden_transition(num_labels):
    crf, emissions, mask, lengths = random_problem(4, batch=8, max_len=15, labels=num_labels,
                                                   dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    transitions = torch.rand(num_labels, num_labels, generator=g) < 0.3
    transitions |= torch.eye(num_labels, dtype=torch.bool)  # every length stays feasible
    start = torch.rand(num_labels, generator=g) < 0.5
    start[0] = True
    end = start.clone()
    allowed = (transitions, start, end)
    free, _ = crf.viterbi(emissions, mask)
    paths, _ = crf.viterbi(emissions, mask, constraints=allowed)
    labels, _ = crf.kbest(emissions, mask, k=3, constraints=allowed)
    assert not all(permitted(free[b, : lengths[b]].tolist(), allowed) for b in range(8))
    for b in range(8):
        n = int(lengths[b])
        assert permitted(paths[b, :n].tolist(), allowed)
        assert all(permitted(p[:n].tolist(), allowed) for p in labels[b])


def test_all_allowed_constraints_change_nothing():
    crf, emissions, mask, _ = random_problem(5, batch=6, max_len=10, labels=6)
    everything = label_constraints(["NN", "VB", "JJ", "DT", "IN", "*"])
    paths, best = crf.viterbi(emissions, mask)
    c_paths, c_best = crf.viterbi(emissions, mask, constraints=everything)
    assert torch.equal(paths, c_paths) and torch.allclose(best, c_best)
    labels, energies = crf.kbest(emissions, mask, k=5)
    c_labels, c_energies = crf.kbest(emissions, mask, k=5, constraints=everything)
    assert torch.equal(labels, c_labels) and torch.allclose(energies, c_energies)


def test_infeasible_or_misshapen_constraints_raise():
    crf, emissions, mask, _ = random_problem(6, batch=2, max_len=3, labels=3)
    nothing = (torch.zeros(3, 3, dtype=torch.bool), torch.ones(3, dtype=torch.bool),
               torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no labelling satisfies the constraints"):
        crf.viterbi(emissions, mask, constraints=nothing)
    with pytest.raises(ValueError, match="no labelling satisfies the constraints"):
        crf.kbest(emissions, mask, k=2, constraints=nothing)
    with pytest.raises(ValueError, match=r"constraints for 3 labels need shapes"):
        crf.viterbi(emissions, mask, constraints=label_constraints(BIO))
    with pytest.raises(ValueError, match="at least one label name"):
        label_constraints([])


def test_constrained_marginals_match_brute_force_over_allowed_paths():
    crf, emissions, mask, lengths = random_problem(7, batch=4, max_len=4, labels=5)
    constraints = label_constraints(BIOES)
    marginals = crf.marginals(emissions, mask, constraints=constraints)
    for b in range(4):
        tags, energies = zip(*all_labellings(crf, emissions, lengths, b, constraints))
        probs = torch.softmax(-torch.stack(energies), 0)
        expected = torch.zeros(emissions.shape[1:], dtype=torch.float64)
        for path, p in zip(tags, probs):
            expected[torch.arange(len(path)), torch.tensor(path)] += p
        assert torch.allclose(marginals[b], expected)
