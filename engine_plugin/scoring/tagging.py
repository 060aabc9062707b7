"""Tagging scorers for ``fairseq-generate --scoring``: token accuracy and conlleval span F1.

fairseq's ``generate.py`` calls ``scorer.add_string(target_str, hypo_str)`` once per
hypothesis, both strings being space-separated labels (``"B-PER I-PER O"``), and prints
``scorer.result_string()`` at the end. Two scorers are registered:

- ``tag_accuracy``: percentage of tokens whose predicted label equals the gold label. A
  gold label :data:`~engine_plugin.data.labels.RARE_LABEL` (``*``, the bucket of labels too
  rare to keep) is always counted wrong, even when ``*`` is predicted.
- ``span_f1``: chunk precision / recall / F1 computed like conlleval, for IOB1, IOB2 (BIO)
  and BIOES labels alike.

Both expect one hypothesis per sentence (the default ``--nbest 1``) and raise
``ValueError`` when a hypothesis does not have as many labels as its reference. The count
functions :func:`accuracy_counts` and :func:`span_f1_counts` take label sequences
directly, for code that compares solvers without going through ``generate.py``.

Chunk rules
-----------
A label is split at its first ``-`` into a prefix and a type (``"B-PER"`` -> ``("B",
"PER")``). Labels without ``-`` (``O``, ``*``, fairseq's ``<<unk>>``) are outside any
chunk. Prefixes must be ``B``, ``I``, ``E`` or ``S``; anything else (e.g. BILOU's ``U``
and ``L``) raises ``ValueError`` instead of being scored silently wrong.

A chunk starts at ``B-``/``S-``, at ``I-``/``E-`` after ``O``, ``E-`` or ``S-``, and at
any chunk label whose type differs from the previous label's. It ends before ``B-``,
``S-`` or ``O`` that follow ``B-``/``I-``, after every ``E-`` and ``S-``, and before any
label whose type differs. These are conlleval.pl's rules completed for ``S-`` (as in
seqeval's default mode); on B/I/O labels they are exactly conlleval.pl's, so ill-formed
sequences (``I-`` after ``O``, type switches inside a chunk) are scored as conlleval
scores them. Sentences are scored independently, each padded with ``O`` on both sides.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from fairseq.dataclass import FairseqDataclass
from fairseq.scoring import BaseScorer, register_scorer

from engine_plugin.data.labels import RARE_LABEL
from engine_plugin.report import current_report, extend_score_line

# (prefix, type) of one label; outside labels have prefix "O" and an empty type.
SplitLabel = Tuple[str, str]
# (type, first position, last position), both positions inclusive.
Chunk = Tuple[str, int, int]

_OUTSIDE: SplitLabel = ("O", "")
_CHUNK_PREFIXES = frozenset("BIES")
# (previous prefix, prefix) pairs that close the previous chunk / open a new one.
_ENDING_PAIRS = frozenset({("B", "B"), ("B", "S"), ("B", "O"), ("I", "B"), ("I", "S"), ("I", "O")})
_STARTING_PAIRS = frozenset({("O", "I"), ("O", "E"), ("E", "I"), ("E", "E"), ("S", "I"), ("S", "E")})


def check_aligned(gold: Sequence[str], pred: Sequence[str], index: int) -> None:
    """Raises ``ValueError`` unless sentence ``index`` has as many predicted as gold labels."""
    if len(gold) != len(pred):
        raise ValueError(
            f"sentence {index}: reference has {len(gold)} labels but hypothesis has {len(pred)}"
        )


def _aligned_pairs(gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]):
    """Yields ``(gold, pred)`` label sequences after checking that they line up."""
    if len(gold_seqs) != len(pred_seqs):
        raise ValueError(
            f"{len(gold_seqs)} reference sentences but {len(pred_seqs)} hypothesis sentences"
        )
    for index, (gold, pred) in enumerate(zip(gold_seqs, pred_seqs)):
        check_aligned(gold, pred, index)
        yield gold, pred


def accuracy_counts(
    gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> Tuple[int, int]:
    """Counts correctly labelled tokens.

    Args:
        gold_seqs: one sequence of gold labels per sentence.
        pred_seqs: one sequence of predicted labels per sentence, aligned with ``gold_seqs``.

    Returns:
        ``(n_correct, n_tokens)``; a token whose gold label is
        :data:`~engine_plugin.data.labels.RARE_LABEL` is never correct.

    Raises:
        ValueError: if the numbers of sentences differ, or a sentence's lengths differ
            (the message names the sentence index and both lengths).
    """
    n_correct = n_tokens = 0
    for gold, pred in _aligned_pairs(gold_seqs, pred_seqs):
        n_tokens += len(gold)
        n_correct += sum(g == p and g != RARE_LABEL for g, p in zip(gold, pred))
    return n_correct, n_tokens


def split_label(label: str) -> SplitLabel:
    """Splits ``"B-PER"`` into ``("B", "PER")``; a label without ``-`` is ``("O", "")``."""
    prefix, dash, type_ = label.partition("-")
    if not dash:
        return _OUTSIDE
    if prefix not in _CHUNK_PREFIXES:
        raise ValueError(
            f"label {label!r} has chunk prefix {prefix!r}; expected B-, I-, E- or S- "
            "(or a label without '-' for outside)"
        )
    return prefix, type_


def chunk_ends(prev: SplitLabel, cur: SplitLabel) -> bool:
    """True if a chunk ends at ``prev``, i.e. between the labels ``prev`` and ``cur``."""
    (prev_prefix, prev_type), (prefix, type_) = prev, cur
    return prev_prefix != "O" and (
        prev_prefix in ("E", "S") or (prev_prefix, prefix) in _ENDING_PAIRS or prev_type != type_
    )


def chunk_starts(prev: SplitLabel, cur: SplitLabel) -> bool:
    """True if a chunk starts at ``cur``, the label following ``prev``."""
    (prev_prefix, prev_type), (prefix, type_) = prev, cur
    return prefix != "O" and (
        prefix in ("B", "S") or (prev_prefix, prefix) in _STARTING_PAIRS or prev_type != type_
    )


def extract_chunks(labels: Sequence[str]) -> List[Chunk]:
    """Returns the chunks of one sentence as ``(type, first, last)``, positions inclusive.

    >>> extract_chunks(["B-PER", "I-PER", "O", "I-LOC", "S-ORG"])
    [('PER', 0, 1), ('LOC', 3, 3), ('ORG', 4, 4)]
    """
    chunks = []
    prev, first = _OUTSIDE, 0
    for position, cur in enumerate([*map(split_label, labels), _OUTSIDE]):
        if chunk_ends(prev, cur):
            chunks.append((prev[1], first, position - 1))
        if chunk_starts(prev, cur):
            first = position
        prev = cur
    return chunks


def span_f1_counts(
    gold_seqs: Sequence[Sequence[str]], pred_seqs: Sequence[Sequence[str]]
) -> Tuple[int, int, int]:
    """Counts chunks as conlleval does.

    Args:
        gold_seqs: one sequence of gold labels per sentence.
        pred_seqs: one sequence of predicted labels per sentence, aligned with ``gold_seqs``.

    Returns:
        ``(n_correct, n_gold, n_pred)``: predicted chunks matching a gold chunk in type and
        both boundaries, gold chunks, predicted chunks.

    Raises:
        ValueError: as :func:`accuracy_counts`, or for a label with an unknown chunk prefix.
    """
    n_correct = n_gold = n_pred = 0
    for gold, pred in _aligned_pairs(gold_seqs, pred_seqs):
        gold_chunks, pred_chunks = set(extract_chunks(gold)), set(extract_chunks(pred))
        n_correct += len(gold_chunks & pred_chunks)
        n_gold += len(gold_chunks)
        n_pred += len(pred_chunks)
    return n_correct, n_gold, n_pred


def precision_recall_f1(n_correct: int, n_gold: int, n_pred: int) -> Tuple[float, float, float]:
    """Precision, recall and F1 in percent (0-100); a ratio with a zero denominator is 0."""
    precision = 100.0 * n_correct / n_pred if n_pred else 0.0
    recall = 100.0 * n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class TaggingScorerConfig(FairseqDataclass):
    """The tagging scorers have no options."""


class _TaggingScorer(BaseScorer):
    """Keeps each sentence's labels as lists (``self.ref``, ``self.pred``) and checks them;
    subclasses give ``score`` and ``result``, the metric and its line."""

    def add_string(self, ref: str, pred: str) -> None:
        """Adds one sentence: space-separated gold labels ``ref`` and predicted labels ``pred``.

        Raises:
            ValueError: if the two strings hold different numbers of labels.
        """
        gold, hypo = ref.split(), pred.split()
        check_aligned(gold, hypo, len(self.ref))
        self.ref.append(gold)
        self.pred.append(hypo)

    def result(self) -> str:
        """The metric over all sentences added, with its counts."""
        raise NotImplementedError

    def result_string(self) -> str:
        """:meth:`result`, followed by the energy/speed summary of the current generation
        run if there is one (``engine_plugin/report.py``)."""
        return extend_score_line(self.result(), current_report().summary())


@register_scorer("tag_accuracy", dataclass=TaggingScorerConfig)
class TagAccuracyScorer(_TaggingScorer):
    """Token accuracy over all sentences added; gold ``*`` always counts as wrong."""

    def score(self) -> float:
        """Accuracy in percent (0 when no token was added)."""
        n_correct, n_tokens = accuracy_counts(self.ref, self.pred)
        return 100.0 * n_correct / n_tokens if n_tokens else 0.0

    def result(self) -> str:
        """E.g. ``"Accuracy = 91.23 (n_tokens=1234)"``."""
        return f"Accuracy = {self.score():.2f} (n_tokens={sum(map(len, self.ref))})"


@register_scorer("span_f1", dataclass=TaggingScorerConfig)
class SpanF1Scorer(_TaggingScorer):
    """conlleval chunk F1 over all sentences added (IOB1, IOB2/BIO or BIOES labels)."""

    def score(self) -> float:
        """Chunk F1 in percent."""
        return precision_recall_f1(*span_f1_counts(self.ref, self.pred))[2]

    def result(self) -> str:
        """E.g. ``"F1 = 85.71 (precision=100.00 recall=75.00 n_correct=3 n_gold=4 n_pred=3)"``."""
        n_correct, n_gold, n_pred = span_f1_counts(self.ref, self.pred)
        precision, recall, f1 = precision_recall_f1(n_correct, n_gold, n_pred)
        return (f"F1 = {f1:.2f} (precision={precision:.2f} recall={recall:.2f} "
                f"n_correct={n_correct} n_gold={n_gold} n_pred={n_pred})")
