"""fairseq-interactive --task sequence_labeling: typed sentences in, H- lines out."""

import re
import sys

import pytest
from fairseq_cli import interactive as fairseq_interactive

SENTENCES = ["the dog sees a cat", "she reads the old book today", "they walk"]


def interactive(quickstart, path, lines, *extra, capsys, monkeypatch):
    """Runs fairseq-interactive's entry point in this process (the command line's code
    path, without a fresh interpreter's imports) on ``lines``; returns its standard output."""
    source = quickstart.root / "typed.txt"
    source.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(sys, "argv", [
        "fairseq-interactive", str(quickstart.bin), "--user-dir", "engine_plugin", "--task",
        "sequence_labeling", "--path", str(path), "--cpu", "--input", str(source),
        *map(str, extra)])
    capsys.readouterr()
    fairseq_interactive.cli_main()
    return capsys.readouterr().out


@pytest.fixture
def typed(quickstart, capsys, monkeypatch):
    return lambda path, lines, *extra: interactive(quickstart, path, lines, *extra,
                                                   capsys=capsys, monkeypatch=monkeypatch)


@pytest.fixture(scope="module")
def viterbi_scores():
    return {}


def hypotheses(stdout):
    """{sentence id: (score, labels)} of the H- lines."""
    return {int(i): (float(score), labels.split())
            for i, score, labels in re.findall(r"^H-(\d+)\t(\S+)\t(.*)$", stdout, re.M)}


def test_one_h_line_per_sentence_with_a_label_per_word(quickstart, typed, viterbi_scores):
    hyps = hypotheses(typed(quickstart.energy, SENTENCES))
    assert sorted(hyps) == [0, 1, 2]
    labels = {line.split()[0] for line in open(quickstart.bin / "dict.tags.txt")}
    for i, sentence in enumerate(SENTENCES):
        assert len(hyps[i][1]) == len(sentence.split())
        assert set(hyps[i][1]) <= labels
    viterbi_scores.update({i: score for i, (score, _) in hyps.items()})


@pytest.mark.parametrize("method", ["gd", "infnet", "tailored", "warmstart"])
def test_every_solver(quickstart, quickstart_infnet, typed, viterbi_scores, method):
    path = quickstart.energy if method == "gd" else quickstart_infnet
    extra = ["--inference", method, "--gd-steps", "3", "--tailor-steps", "2"]
    if method != "gd":
        extra += ["--energy-path", quickstart.energy]
    hyps = hypotheses(typed(path, SENTENCES, *extra))
    assert [len(hyps[i][1]) for i in range(3)] == [len(s.split()) for s in SENTENCES]
    # Viterbi's labelling has the lowest energy: no method scores (−E/ln 2) above it
    if not viterbi_scores:
        viterbi_scores.update({i: score for i, (score, _) in
                               hypotheses(typed(quickstart.energy, SENTENCES)).items()})
    assert all(hyps[i][0] <= viterbi_scores[i] + 1e-3 for i in range(3))


def test_nbest_gives_the_k_best_labellings_in_increasing_energy(quickstart, typed,
                                                                viterbi_scores):
    out = typed(quickstart.energy, SENTENCES, "--nbest", "3")
    for i, sentence in enumerate(SENTENCES):
        found = [(float(score), labels.split()) for score, labels in
                 re.findall(rf"^H-{i}\t(\S+)\t(.*)$", out, re.M)]
        assert len(found) == 3 and len({tuple(labels) for _, labels in found}) == 3
        assert all(len(labels) == len(sentence.split()) for _, labels in found)
        scores = [score for score, _ in found]  # -E / ln 2: decreasing = increasing energy
        assert scores == sorted(scores, reverse=True)
        if viterbi_scores:
            assert scores[0] == pytest.approx(viterbi_scores[i], abs=1e-3)


def test_marginal_scores_give_per_token_confidence(quickstart, typed):
    out = typed(quickstart.energy, SENTENCES, "--marginal-scores")
    for i, sentence in enumerate(SENTENCES):
        (line,) = re.findall(rf"^P-{i}\t(.*)$", out, re.M)
        log2_marginals = [float(v) for v in line.split()]
        assert len(log2_marginals) == len(sentence.split())
        assert all(v <= 1e-6 for v in log2_marginals)  # log2 of probabilities


def test_approximate_solvers_refuse_nbest(quickstart, typed):
    with pytest.raises(ValueError, match="--nbest 2 needs --inference viterbi"):
        typed(quickstart.energy, SENTENCES, "--inference", "gd", "--nbest", "2")


def test_tokenizer_splits_words_and_leaves_labels_alone(quickstart, typed):
    out = typed(quickstart.energy, ["the dog sees\ta cat"], "--tokenizer", "space")
    (score, labels), = hypotheses(out).values()
    assert len(labels) == 5
    assert re.search(r"^D-0\t\S+\t" + " ".join(labels) + "$", out, re.M)


@pytest.mark.parametrize("line, message", [
    ("", "an input sentence is empty"),
    ("dog " * 30, "has 30 words .* more than --max-source-positions 20"),
])
def test_bad_lines_get_clear_messages(quickstart, typed, line, message):
    with pytest.raises(ValueError, match=message):
        typed(quickstart.energy, [line], "--max-source-positions", "20")
