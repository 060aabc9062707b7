"""Running statistics of one ``fairseq-generate`` run, printed with the score line.

fairseq-generate prints only ``scorer.result_string()`` at the end; the tagging scorers append
``current_report().summary()`` so that energies, search error and speed appear on the same
line as accuracy or F1.
"""

import time
from contextlib import contextmanager
from typing import Optional

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
