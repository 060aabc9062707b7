"""scripts/bench_training_throughput.py on the tiny transformer teacher: one row per
combination with positive throughput, runs at once summed, and the checkpoint untouched."""

import hashlib
import json
import subprocess
import sys

from tests.cli import ROOT


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_bench_resumes_the_checkpoint_for_each_combination_and_leaves_it_unchanged(
        tiny_teachers, tmp_path):
    checkpoint = tiny_teachers["checkpoints"]["transformer"]
    before = _digest(checkpoint)
    rows_path = tmp_path / "rows.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.bench_training_throughput", checkpoint, "--threads", "1",
         "--copies", "2", "--max-tokens", "64", "128", "--update-freq", "1",
         "--batches", "16", "--json", str(rows_path)],
        cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(rows_path.read_text())
    assert [(r["copies"], r["max_tokens"], r["updates"]) for r in rows] == [
        (2, 64, 16), (2, 128, 8)]  # the same tokens per run
    for row in rows:
        assert len(row["run_wps"]) == row["copies"] and min(row["run_wps"]) > 0
        assert row["wps"] == sum(row["run_wps"])
    assert "| 1 | 2 | 128 | 1 |" in proc.stdout
    assert _digest(checkpoint) == before


def test_bench_names_a_missing_checkpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scripts.bench_training_throughput",
                           str(tmp_path / "none.pt")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "none.pt" in proc.stderr
