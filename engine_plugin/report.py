"""Running statistics of one ``fairseq-generate`` run, printed with the score line, and the
parser of that line.

fairseq-generate prints only ``scorer.result_string()`` at the end; the tagging scorers append
``current_report().summary()`` so that energies, search error and speed appear on the same
line as accuracy or F1, and the stock BLEU scorers (``engine_plugin/compat.py``) append
``current_report().summary()`` (after ``--inference gd|warmstart|tailored``: teacher
energies and speed) and ``current_report().symbol_summary()`` after a NAT decode, all with
:func:`extend_score_line` (each line below is one line of the output)::

    Generate test with beam=5: Accuracy = 99.14 (n_tokens=2806) | inference=viterbi
        energy_relaxed=-82.5257 energy=-82.5257 search_error=0.0000 zero_search_error=100.0%
        sentences=300 sentences_per_s=202.5
    Generate test with beam=1: BLEU = 23.10 55.0/29.1/17.2/10.6 (BP = ...) | special_pad=0.00%
        special_unk=0.40% special_bos=0.00% special_early_eos=0.10% slots=2500
    Generate test with beam=5: BLEU4 = 0.00, 50.8/14.6/3.8/0.0 (BP=1.000, ...) | inference=warmstart
        energy_relaxed=16.9454 energy=16.8687 sentences=24 sentences_per_s=44.0 | special_pad=0.00%
        special_unk=0.00% special_bos=0.00% special_early_eos=0.00% slots=504

:func:`parse_score_line` reads such a line back; the scripts that turn generate outputs into
tables use it, so that the format and its readers change together.
"""

import re
import time
from contextlib import contextmanager
from typing import Dict, NamedTuple, Optional

from torch import Tensor

# float32 energies of a few hundred nats agree to about this much
SEARCH_ERROR_TOLERANCE = 1e-3


class InferenceReport:
    """Sums over sentences of the energies of an inference method's outputs, its search
    error against the exact minimum, and the time it took."""

    def __init__(self, method: str = ""):
        self.method = method
        self.symbols = {}  # special symbol name -> output slots that held it
        self.slots = 0
        self.sentences = 0
        self.relaxed = 0.0
        self.discrete = 0.0
        self.search_error = 0.0
        self.exact_sentences = 0
        self.zero_error = 0
        self.seconds = 0.0

    def add(self, discrete: Tensor, relaxed: Optional[Tensor] = None,
            minimum: Optional[Tensor] = None):
        """Adds a batch.

        Args:
            discrete: (B,) energies of the returned discrete outputs.
            relaxed: (B,) energies of the relaxed outputs before discretisation (None for
                methods whose output is discrete, e.g. Viterbi: then equal to ``discrete``).
            minimum: (B,) exact minimum energies (Viterbi), when the energy has them.
        Raises:
            RuntimeError: a discrete output has lower energy than the exact minimum.
        """
        discrete = discrete.detach().double()
        self.sentences += discrete.numel()
        self.discrete += float(discrete.sum())
        self.relaxed += float((discrete if relaxed is None else relaxed.detach().double()).sum())
        if minimum is not None:
            error = discrete - minimum.detach().double()
            tolerance = SEARCH_ERROR_TOLERANCE * minimum.detach().double().abs().clamp(min=1)
            if (error < -tolerance).any():
                raise RuntimeError(
                    f"an output of {self.method} has energy {float(discrete[error.argmin()])} "
                    f"below the exact minimum {float(minimum[error.argmin()])}: the energy "
                    "and its exact solver disagree (a bug)"
                )
            self.exact_sentences += discrete.numel()
            self.search_error += float(error.clamp(min=0).sum())
            self.zero_error += int((error <= tolerance).sum())

    def add_symbols(self, counts, slots: int):
        """Adds the special symbols (``{name: count}``) found among ``slots`` output
        positions that a NAT decoder filled."""
        self.slots += slots
        for name, count in counts.items():
            self.symbols[name] = self.symbols.get(name, 0) + count

    def symbol_summary(self) -> str:
        """``special_pad=0.00% ...`` shares of the filled positions, "" before any."""
        if not self.slots:
            return ""
        return " ".join(f"special_{name}={100.0 * count / self.slots:.2f}%"
                        for name, count in self.symbols.items()) + f" slots={self.slots}"

    @contextmanager
    def timed(self):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def summary(self) -> str:
        if not self.sentences:
            return ""
        n = self.sentences
        parts = [f"inference={self.method}", f"energy_relaxed={self.relaxed / n:.4f}",
                 f"energy={self.discrete / n:.4f}"]
        if self.exact_sentences:
            parts += [f"search_error={self.search_error / self.exact_sentences:.4f}",
                      f"zero_search_error={100.0 * self.zero_error / self.exact_sentences:.1f}%"]
        parts += [f"sentences={n}", f"sentences_per_s={n / max(self.seconds, 1e-9):.1f}"]
        return " ".join(parts)


_current = InferenceReport()


def start_report(method: str) -> InferenceReport:
    """Starts a new report (one per generator) and makes it current."""
    global _current
    _current = InferenceReport(method)
    return _current


def current_report() -> InferenceReport:
    return _current


SCORE_LINE_SEPARATOR = " | "
"""Between a scorer's result and each part this plugin appends to the score line."""

# the scorer's result: "NAME = NUMBER ...", after fairseq's "Generate SUBSET with beam=K: "
_METRIC = re.compile(r"(?:^|: )(\w+) = (-?\d+(?:\.\d+)?)")


def extend_score_line(result: str, part: str) -> str:
    """A scorer's ``result`` followed by ``part`` (an :meth:`InferenceReport.summary` or
    :meth:`InferenceReport.symbol_summary`); ``result`` itself when ``part`` is empty."""
    return f"{result}{SCORE_LINE_SEPARATOR}{part}" if part else result


class ScoreLine(NamedTuple):
    """What a score line says (see :func:`parse_score_line`).

    metric_name: the scorer's metric, e.g. ``Accuracy``, ``F1``, ``BLEU`` (sacrebleu) or
        ``BLEU4`` (bleu).
    metric: its value as printed, e.g. ``"99.14"``.
    fields: every ``key=value`` of the appended parts (``inference``, ``energy``,
        ``search_error``, ``sentences_per_s``, ``special_pad``, ``slots``, ...), values as
        printed without a trailing ``%``.
    """

    metric_name: str
    metric: str
    fields: Dict[str, str]


def parse_score_line(line: str) -> ScoreLine:
    """Parses the score line of ``fairseq-generate`` (its last line; the module docstring
    shows two), with or without fairseq's ``Generate SUBSET with beam=K:`` prefix.

    Raises:
        ValueError: ``line`` does not start with a scorer's ``NAME = NUMBER``.
    """
    result, *parts = line.strip().split(SCORE_LINE_SEPARATOR)
    metric = _METRIC.search(result)
    if not metric:
        raise ValueError(f"not a fairseq-generate score line: {line.strip()!r}")
    fields = {}
    for part in parts:
        for item in part.split():
            key, equals, value = item.partition("=")
            if equals:
                fields[key] = value.rstrip("%")
    return ScoreLine(metric.group(1), metric.group(2), fields)
