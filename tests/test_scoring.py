import random
import warnings

import pytest
from fairseq import options, scoring
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from omegaconf import OmegaConf
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import get_entities

from engine_plugin.scoring.tagging import (
    SpanF1Scorer,
    TagAccuracyScorer,
    accuracy_counts,
    extract_chunks,
    precision_recall_f1,
    span_f1_counts,
)

TYPES = ("PER", "LOC", "ORG")


def _labels(prefixes):
    return ["O"] + [f"{p}-{t}" for p in prefixes for t in TYPES]


def _random_pair(rng, labels):
    """A random gold sequence (well- or ill-formed) and a prediction that half-agrees with it."""
    gold = [rng.choice(labels) for _ in range(rng.randint(0, 12))]
    pred = [g if rng.random() < 0.6 else rng.choice(labels) for g in gold]
    return gold, pred


def _seqeval_prf(gold_seqs, pred_seqs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a ratio has a zero denominator
        return tuple(
            100 * metric(gold_seqs, pred_seqs) for metric in (precision_score, recall_score, f1_score)
        )


@pytest.mark.parametrize("prefixes", ["BI", "BIES"], ids=["bio", "bioes"])
def test_span_f1_matches_seqeval_on_random_sequences(prefixes):
    rng = random.Random(len(prefixes))
    labels = _labels(prefixes)
    pairs = [_random_pair(rng, labels) for _ in range(300)]
    for gold, pred in pairs:
        for seq in (gold, pred):
            assert sorted(extract_chunks(seq)) == sorted(get_entities(seq))
        counts = span_f1_counts([gold], [pred])
        assert precision_recall_f1(*counts) == pytest.approx(_seqeval_prf([gold], [pred]))
    gold_seqs, pred_seqs = map(list, zip(*pairs))
    counts = span_f1_counts(gold_seqs, pred_seqs)
    assert counts[0] > 0
    assert precision_recall_f1(*counts) == pytest.approx(_seqeval_prf(gold_seqs, pred_seqs))


@pytest.mark.parametrize(
    "labels, chunks",
    [
        # IOB1 as conlleval reads it: I- opens a chunk after O, B- only splits adjacent chunks.
        ("I-PER I-PER B-PER O I-LOC", [("PER", 0, 1), ("PER", 2, 2), ("LOC", 4, 4)]),
        # Ill-formed BIO: I- after O opens a chunk, a type switch closes one and opens another.
        ("O I-PER I-LOC I-LOC B-ORG I-PER", [("PER", 1, 1), ("LOC", 2, 3), ("ORG", 4, 4), ("PER", 5, 5)]),
        # BIOES, including E-/S- followed by I-/E-, and a B- left open at the end.
        ("B-PER E-PER S-LOC B-ORG", [("PER", 0, 1), ("LOC", 2, 2), ("ORG", 3, 3)]),
        ("E-PER E-PER S-LOC I-LOC B-ORG I-ORG E-ORG", [("PER", 0, 0), ("PER", 1, 1), ("LOC", 2, 2), ("LOC", 3, 3), ("ORG", 4, 6)]),
        # Labels without '-' (O, the rare bucket *, fairseq's escaped unknown) are outside.
        ("B-PER * I-PER <<unk>> S-LOC", [("PER", 0, 0), ("PER", 2, 2), ("LOC", 4, 4)]),
        ("", []),
    ],
)
def test_extract_chunks_fixtures(labels, chunks):
    assert extract_chunks(labels.split()) == chunks


def test_span_f1_hand_computed():
    gold = ["B-PER I-PER O S-LOC B-ORG E-ORG O B-MISC".split(), "O O".split()]
    pred = ["B-PER I-PER O S-LOC B-ORG E-ORG O O".split(), "O S-LOC".split()]
    assert span_f1_counts(gold, pred) == (3, 4, 4)
    assert precision_recall_f1(3, 4, 4) == pytest.approx((75.0, 75.0, 75.0))
    assert precision_recall_f1(3, 4, 3) == pytest.approx((100.0, 75.0, 600 / 7))
    assert precision_recall_f1(0, 0, 0) == (0.0, 0.0, 0.0)


def test_span_f1_rejects_unknown_prefix():
    with pytest.raises(ValueError, match="'U-PER'"):
        span_f1_counts([["U-PER"]], [["O"]])


def test_accuracy_counts_rare_label_always_wrong():
    gold = [["B-PER", "*", "O"], ["*"]]
    pred = [["B-PER", "*", "B-LOC"], ["O"]]
    assert accuracy_counts(gold, pred) == (1, 4)


@pytest.mark.parametrize("counts", [accuracy_counts, span_f1_counts])
def test_length_mismatch_names_sentence_and_lengths(counts):
    with pytest.raises(ValueError, match="sentence 1: reference has 2 labels but hypothesis has 3"):
        counts([["O"], ["O", "O"]], [["O"], ["O", "O", "O"]])
    with pytest.raises(ValueError, match="2 reference sentences but 1 hypothesis"):
        counts([["O"], ["O"]], [["O"]])


def test_scorers_through_registry_string_and_dictconfig():
    for choice in ("span_f1", OmegaConf.create({"_name": "span_f1"})):
        assert isinstance(scoring.build_scorer(choice, tgt_dict=None), SpanF1Scorer)
    for choice in ("tag_accuracy", OmegaConf.create({"_name": "tag_accuracy"})):
        assert isinstance(scoring.build_scorer(choice, tgt_dict=None), TagAccuracyScorer)


def test_scorer_from_generate_command_line():
    parser = options.get_generation_parser()
    args = options.parse_args_and_arch(parser, ["data", "--path", "x.pt", "--scoring", "span_f1"])
    cfg = convert_namespace_to_omegaconf(args)
    assert isinstance(scoring.build_scorer(cfg.scoring, None), SpanF1Scorer)


def test_span_f1_scorer_strings():
    scorer = scoring.build_scorer("span_f1", tgt_dict=None)
    assert scorer.score() == 0.0
    scorer.add_string("B-PER I-PER O S-LOC B-ORG E-ORG O B-MISC", "B-PER I-PER O S-LOC B-ORG E-ORG O O")
    assert scorer.score() == pytest.approx(600 / 7)
    assert scorer.result_string() == (
        "F1 = 85.71 (precision=100.00 recall=75.00 n_correct=3 n_gold=4 n_pred=3)"
    )


def test_tag_accuracy_scorer_strings_and_mismatch():
    scorer = scoring.build_scorer("tag_accuracy", tgt_dict=None)
    assert scorer.score() == 0.0
    scorer.add_string("B-PER * O", "B-PER * B-LOC")
    scorer.add_string("O O", "O O")
    assert scorer.score() == pytest.approx(60.0)
    assert scorer.result_string() == "Accuracy = 60.00 (n_tokens=5)"
    with pytest.raises(ValueError, match="sentence 2: reference has 2 labels but hypothesis has 1"):
        scorer.add_string("O O", "O")
    assert scorer.result_string() == "Accuracy = 60.00 (n_tokens=5)"
