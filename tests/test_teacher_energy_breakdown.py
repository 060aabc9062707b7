"""scripts/teacher_energy_breakdown.py: token classes, the comparison with the teacher's beam
on hand-made energies, and the whole script on the tiny teacher against its own token path."""

import json
import os

import pytest
import torch

from engine_plugin.energies import TranslationEnergy
from scripts import teacher_energy, teacher_energy_breakdown as breakdown


def test_token_classes_of_a_hand_made_sentence():
    tokens = "a , , dog dog ru@@ n@@ ning fast".split()
    assert breakdown.token_classes(tokens) == [
        "other", "comma", "comma", "other", "repeat", "subword", "subword", "subword", "other",
        "end"]


def _side(outputs, energies, bleu):
    return {"outputs": outputs, "energies": energies, "totals": [sum(v) for v in energies],
            "bleu": bleu}


def test_comparison_with_the_beam_on_hand_made_energies():
    model = _side(["a , ,", "b c", "d"], [[1.0, 0.5, 0.5, 1.0], [2.0, 2.0, 1.0], [9.0, 1.0]],
                  [10.0, 50.0, 0.0])
    beam = _side(["a b c", "b d e", "e"], [[1.0, 2.0, 2.0, 1.0], [1.0] * 4, [1.0, 1.0]],
                 [30.0, 40.0, 5.0])
    summary = breakdown.compare(model, beam)
    assert summary["energy"] == pytest.approx({"model": (3 + 5 + 10) / 3, "beam": (6 + 4 + 2) / 3})
    assert summary["below_beam"] == pytest.approx(1 / 3)  # sentence 0: 3 < 6
    assert summary["below_beam_and_worse"] == pytest.approx(1 / 3)  # and BLEU 10 < 30
    comma = summary["classes"]["model"]["comma"]
    assert comma == pytest.approx({"share": 2 / 9, "energy": 0.5})
    assert summary["classes"]["beam"]["end"] == pytest.approx({"share": 3 / 10, "energy": 1.0})
    same = summary["same_length"]  # sentences 0 and 2 have equally many tokens
    assert same["sentences"] == 2 and same["below_beam"] == pytest.approx(0.5)
    assert same["energy"] == pytest.approx({"model": 6.5, "beam": 4.0})
    assert same["positions"]["model"] == pytest.approx([5.0, 0.75, 0.5, 1.0])
    assert summary["classes"]["beam"]["comma"] == {"share": 0.0, "energy": None}
    shown_report = breakdown.report(summary)
    assert "below the beam with a lower sentence BLEU 33.3%" in shown_report
    assert "| comma | 0.0% | - |" not in shown_report and "| 0.0% | - |" in shown_report
    shown = breakdown.examples(model, beam, 5).splitlines()
    assert shown[0] == "model (energy 3.00, BLEU 10.0): a:1.0 ,:0.5 ,:0.5 </s>:1.0"
    assert len([line for line in shown if line]) == 2  # one exploit: the model, the beam


def _generate_output(path, pairs):
    with open(path, "w", encoding="utf-8") as f:
        for i, (hypothesis, reference) in enumerate(pairs):
            f.write(f"T-{i}\t{reference}\nH-{i}\t-1.0\t{hypothesis}\n")


def test_script_on_the_tiny_teacher_sums_to_its_sentence_energies(tiny_teachers, tmp_path):
    raw = tiny_teachers["raw"]
    with open(os.path.join(raw, "valid.src")) as f:
        sources = f.read().splitlines()[:6]
    with open(os.path.join(raw, "valid.tgt")) as f:
        references = f.read().splitlines()[:6]
    shuffled = [" ".join(reversed(r.split())) for r in references]
    (tmp_path / "src").write_text("\n".join(sources) + "\n")
    _generate_output(tmp_path / "beam.txt", zip(references, references))
    _generate_output(tmp_path / "model.txt", zip(shuffled, references))
    out = tmp_path / "summary.json"
    breakdown.main(["--teacher", tiny_teachers["checkpoints"]["transformer"], "--source",
                    str(tmp_path / "src"), "--beam", str(tmp_path / "beam.txt"),
                    str(tmp_path / "model.txt"), "--json", str(out)])
    summary = json.loads(out.read_text())
    energy = TranslationEnergy.from_checkpoint(tiny_teachers["checkpoints"]["transformer"])
    expected = {name: teacher_energy.sentence_energies(energy, sources, outputs, 4)
                for name, outputs in (("model", shuffled), ("beam", references))}
    assert summary["energy"] == pytest.approx({k: float(v.mean()) for k, v in expected.items()},
                                              rel=1e-5)
    below = (expected["model"] < expected["beam"]).double().mean().item()
    assert summary["below_beam"] == pytest.approx(below)
    assert summary["same_length"]["sentences"] == 6  # reversing keeps the length
    assert summary["classes"]["beam"]["end"]["share"] == pytest.approx(
        6 / sum(len(r.split()) + 1 for r in references))


def test_token_energies_sum_to_the_sentence_energy_whatever_the_batching(tiny_teachers):
    raw = tiny_teachers["raw"]
    with open(os.path.join(raw, "valid.src")) as f:
        sources = f.read().splitlines()
    with open(os.path.join(raw, "valid.tgt")) as f:
        references = f.read().splitlines()
    energy = TranslationEnergy.from_checkpoint(tiny_teachers["checkpoints"]["transformer"])
    one_by_one = teacher_energy.token_energies(energy, sources, references, 1)
    batched = teacher_energy.token_energies(energy, sources, references, 7)
    for alone, together, reference in zip(one_by_one, batched, references):
        assert len(alone) == len(reference.split()) + 1
        torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)
    sums = teacher_energy.sentence_energies(energy, sources, references, 7)
    torch.testing.assert_close(sums, torch.stack([v.sum() for v in one_by_one]), rtol=1e-5,
                               atol=1e-5)  # float32 sums in another order: batch 7 against 1


def test_a_long_example_is_cut_and_says_its_length():
    long = " ".join(["x"] * 100)
    model = _side([long], [[0.1] * 101], [0.0])
    beam = _side(["y"], [[50.0, 1.0]], [20.0])
    line = breakdown.examples(model, beam, 1).splitlines()[0]
    assert line.count("x:0.1") == breakdown.EXAMPLE_TOKENS and line.endswith("... (101 tokens)")
