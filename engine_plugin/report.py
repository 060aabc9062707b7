"""Running statistics of one ``fairseq-generate`` run, printed with the score line.

fairseq-generate prints only ``scorer.result_string()`` at the end; the tagging scorers append
``current_report().summary()`` so that energies and speed appear on the same line.
"""

import time
from contextlib import contextmanager


class InferenceReport:
    """Sums over sentences: energy of the outputs, count and decoding time."""

    def __init__(self, method: str = ""):
        self.method = method
        self.sentences = 0
        self.energy = 0.0
        self.seconds = 0.0

    def add_energies(self, energies):
        """energies: (B,) tensor of the energies of the returned (discrete) outputs."""
        self.sentences += int(energies.numel())
        self.energy += float(energies.sum())

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
        return (
            f"inference={self.method} mean_energy={self.energy / self.sentences:.4f} "
            f"sentences={self.sentences} sentences_per_s={self.sentences / max(self.seconds, 1e-9):.1f}"
        )


_current = InferenceReport()


def start_report(method: str) -> InferenceReport:
    """Starts a new report (one per generator) and makes it current."""
    global _current
    _current = InferenceReport(method)
    return _current


def current_report() -> InferenceReport:
    return _current
