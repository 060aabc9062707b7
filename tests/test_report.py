"""The score line: what the scorers and engine_plugin.report write is what
engine_plugin.report.parse_score_line (and the scripts built on it) read back."""

import pytest
import torch
from fairseq import scoring
from fairseq.data import Dictionary
from fairseq.scoring import bleu

import engine_plugin  # noqa: F401  (the stock BLEU scorers append the symbol shares)
from engine_plugin import report
from engine_plugin.report import parse_score_line, start_report
from scripts.tagging_results import parse_score_line as tagging_row

PREFIX = "Generate test with beam=5: "  # what fairseq_cli.generate prints before the result


@pytest.fixture(autouse=True)
def fresh_report():
    """Each test starts a report of its own; later tests see an empty one again."""
    yield
    start_report("")


def _decoded(method):
    """A report of 4 sentences: energies of the outputs, their relaxations and the minima."""
    discrete = torch.tensor([-3.0, -2.5, -7.25, -1.0])
    relaxed = torch.tensor([-3.5, -2.75, -7.5, -1.5])
    minimum = torch.tensor([-3.0, -3.0, -7.25, -2.0])
    start_report(method).add(discrete, relaxed, minimum)
    return discrete, relaxed, minimum


def test_a_tagging_score_line_parses_back_to_what_was_reported():
    discrete, relaxed, minimum = _decoded("gd")
    scorer = scoring.build_scorer("tag_accuracy", tgt_dict=None)
    scorer.add_string("B-PER O O", "B-PER O B-LOC")
    parsed = parse_score_line(PREFIX + scorer.result_string())
    assert parsed.metric_name == "Accuracy"
    assert float(parsed.metric) == pytest.approx(200 / 3, abs=0.01)
    fields = parsed.fields
    assert fields["inference"] == "gd" and int(fields["sentences"]) == 4
    assert float(fields["energy"]) == pytest.approx(float(discrete.mean()), abs=1e-4)
    assert float(fields["energy_relaxed"]) == pytest.approx(float(relaxed.mean()), abs=1e-4)
    assert float(fields["search_error"]) == pytest.approx(float((discrete - minimum).mean()),
                                                          abs=1e-4)
    assert float(fields["zero_search_error"]) == pytest.approx(50.0)  # 2 of 4, "%" stripped
    assert float(fields["sentences_per_s"]) > 0
    # the benchmark's table rows are read with the same parser
    row = tagging_row(PREFIX + scorer.result_string())
    assert (row["metric_name"], row["metric"]) == ("acc", parsed.metric)
    assert all(row[key] == fields[key] for key in ("energy", "search_error", "sentences"))


def test_a_span_f1_line_without_an_exact_minimum():
    start_report("infnet").add(torch.tensor([-2.0, -4.0]), torch.tensor([-2.5, -4.5]))
    scorer = scoring.build_scorer("span_f1", tgt_dict=None)
    scorer.add_string("B-PER I-PER O", "B-PER I-PER O")
    parsed = parse_score_line(PREFIX + scorer.result_string())
    assert (parsed.metric_name, float(parsed.metric)) == ("F1", 100.0)
    assert float(parsed.fields["energy"]) == pytest.approx(-3.0)
    assert "search_error" not in parsed.fields  # no Viterbi minimum to measure it against


@pytest.mark.parametrize("scorer_name", ["sacrebleu", "bleu"])
def test_a_translation_line_parses_back_to_the_symbol_shares(scorer_name):
    start_report("nat").add_symbols({"pad": 1, "unk": 3, "bos": 0, "early_eos": 0}, slots=8)
    dictionary = Dictionary()
    if scorer_name == "sacrebleu":
        scorer, name = bleu.SacrebleuScorer(bleu.SacrebleuConfig()), "BLEU"
        scorer.add_string("a man rides a bike", "a man rides a bike")
    else:
        scorer, name = bleu.Scorer(bleu.BleuConfig(pad=dictionary.pad(), eos=dictionary.eos(),
                                                   unk=dictionary.unk())), "BLEU4"
        scorer.add(torch.IntTensor([4, 5, 6, 7, 2]), torch.IntTensor([4, 5, 6, 7, 2]))
    parsed = parse_score_line(PREFIX + scorer.result_string())
    assert parsed.metric_name == name and float(parsed.metric) == pytest.approx(100.0)
    assert parsed.fields == {"special_pad": "12.50", "special_unk": "37.50", "special_bos": "0.00",
                             "special_early_eos": "0.00", "slots": "8"}


def test_a_line_without_a_scorer_result_is_refused():
    with pytest.raises(ValueError, match="not a fairseq-generate score line"):
        parse_score_line("2024-01-01 | INFO | fairseq_cli.generate | Translated 8 sentences")
    assert report.extend_score_line("F1 = 1.00", "") == "F1 = 1.00"
