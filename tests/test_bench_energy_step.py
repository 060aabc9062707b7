"""scripts/bench_energy_step.py on the tiny translation fixture: every step it compares runs,
and the table has one row per step, relative to the CMLM step."""

import logging
import re

import pytest

from scripts import bench_energy_step


@pytest.fixture
def logging_restored():
    """The script silences INFO logging for the whole process; later in-process fairseq
    runs of the suite read their INFO lines."""
    yield
    logging.disable(logging.NOTSET)


def test_bench_times_the_four_training_steps(tiny_teachers, capsys, logging_restored):
    bench_energy_step.main([
        "--data", tiny_teachers["data"], "--teacher", tiny_teachers["checkpoints"]["transformer"],
        "--layers", "1", "--dim", "32", "--ffn", "64", "--heads", "2", "--max-tokens", "200",
        "--batches", "2", "--warmup", "1", "--repeats", "1"])
    rows = [line for line in capsys.readouterr().out.splitlines()
            if re.match(r"\| [A-Za-z]", line) and not line.startswith("| step")]
    names = [row.split(" | ")[0][2:] for row in rows]
    assert names == ["CMLM cross-entropy (nat_loss)", "ENGINE energy (energy_loss, O1=SX, O2=ST)",
                     "ENGINE energy, --log-train-energy (O1=SX, O2=ST)",
                     "cross-entropy control (energy_loss --energy-weight 0)"]
    assert rows[0].endswith("| 1.00x |")
    assert all(float(row.split(" | ")[1]) > 0 for row in rows)
