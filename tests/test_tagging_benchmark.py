"""The tagging benchmark: score-line parsing, step-size selection, the tables and plot, and
(slow) the whole ``examples/tagging_benchmark.sh`` driver on a tiny synthetic corpus."""

import os
import subprocess
import sys

import pytest

from examples.quickstart.make_corpus import write_corpus
from scripts.tagging_results import append_row, best_lr, parse_score_line, read_rows
from scripts.tagging_results import main as results_main
from scripts.tagging_tables import main as tables_main
from tests.cli import ROOT, preprocess_tagging, run

ACC_LINE = ("Generate test with beam=5: Accuracy = 91.25 (n_tokens=7707) | inference=gd "
            "energy_relaxed=-160.1234 energy=-161.5000 search_error=1.2500 "
            "zero_search_error=40.5% sentences=547 sentences_per_s=120.3")
F1_LINE = ("Generate test with beam=5: F1 = 85.71 (precision=100.00 recall=75.00 n_correct=3 "
           "n_gold=4 n_pred=3) | inference=viterbi energy_relaxed=-2.0000 energy=-2.0000 "
           "search_error=0.0000 zero_search_error=100.0% sentences=2 sentences_per_s=50.0")
METHODS = {"viterbi", "local", "infnet", "gd", "gd_oracle", "tailored", "warmstart"}
ARCHS = ["tagger_cnn_plus", "tagger_blstm_plus", "tagger_seq2seq_plus"]


def test_parse_score_lines():
    acc = parse_score_line(ACC_LINE)
    assert acc == {"metric_name": "acc", "metric": "91.25", "energy_relaxed": "-160.1234",
                   "energy": "-161.5000", "search_error": "1.2500", "zero_search_error": "40.5",
                   "sentences": "547", "sentences_per_s": "120.3"}
    f1 = parse_score_line(F1_LINE)
    assert (f1["metric_name"], f1["metric"], f1["search_error"]) == ("F1", "85.71", "0.0000")
    with pytest.raises(ValueError, match="not a tagging score line"):
        parse_score_line("Generate test with beam=5: BLEU4 = 20.1")
    with pytest.raises(ValueError):  # the summary of energies and speed is missing
        parse_score_line("Generate test with beam=5: Accuracy = 91.25 (n_tokens=7707)")


def test_best_lr_prefers_metric_then_energy(tmp_path):
    results = str(tmp_path / "r.tsv")
    for lr, metric, energy in (("10", "90.0", "-5"), ("1", "91.0", "-4"), ("0.1", "91.0", "-6")):
        append_row(results, {"data": "d", "split": "valid", "method": "gd", "n": "5", "lr": lr,
                             "metric": metric, "energy": energy, "command": "cmd\twith tab"})
    rows = read_rows([results])
    assert [r["lr"] for r in rows] == ["10", "1", "0.1"]
    assert rows[0]["command"] == "cmd with tab"  # one row per line, whitespace normalised
    assert best_lr(rows, method="gd", n="5") == "0.1"
    assert best_lr([r for r in rows if r["lr"] != "0.1"], method="gd") == "1"
    with pytest.raises(LookupError):
        best_lr(rows, method="warmstart")


def test_best_cli_only_considers_the_given_commands(tmp_path, capsys):
    """The rows of another grid (e.g. an earlier run with another GD start) are left out."""
    results = str(tmp_path / "r.tsv")
    for lr, metric, init in (("10", "99.0", "random"), ("10", "90.0", "zero"),
                             ("1", "91.0", "zero")):
        append_row(results, {"data": "d", "split": "valid", "method": "gd", "n": "5", "lr": lr,
                             "metric": metric, "energy": "-1",
                             "command": f"fairseq-generate --gd-lr {lr}  --gd-init {init}"})
    commands = tmp_path / "commands.txt"
    commands.write_text("fairseq-generate --gd-lr 10 --gd-init zero\n"
                        "fairseq-generate --gd-lr 1 --gd-init zero\n")
    results_main(["best", results, "--commands", str(commands)])
    assert capsys.readouterr().out.strip() == "1"


def _fake_results(path):
    """One test row per method (and a valid row that the tables must leave out)."""
    def row(method, arch="-", n="-", lr="-", metric="90.0", speed="100.0", split="test"):
        append_row(path, {
            "data": "toy", "split": split, "method": method, "arch": arch, "n": n, "lr": lr,
            "metric_name": "acc", "metric": metric, "energy_relaxed": "-10.5", "energy": "-11.0",
            "search_error": "0.5", "zero_search_error": "50.0", "sentences": "100",
            "sentences_per_s": speed, "batch_size": "10",
            "command": f"fairseq-generate --inference {method} --arch-of {arch} N{n}",
            "train_command": f"fairseq-train --arch {arch}" if arch != "-" else ""})
    row("viterbi", metric="91.0", speed="50.0")
    for arch in ARCHS:
        row("local", arch, metric="89.0", speed="500.0")
        row("infnet", arch, metric="90.5", speed="600.0")
    for n, metric in (("5", "80.0"), ("10", "88.0")):
        row("gd", n=n, lr="10", metric=metric, speed="20.0")
        row("gd", n=n, lr="1", metric="1.0", split="valid")
    row("gd_oracle", n="10", lr="oracle", metric="92.0", speed="2.0")
    for n in ("3", "5"):
        row("tailored", ARCHS[0], n=n, lr="0.01", speed="10.0")
        row("warmstart", ARCHS[0], n=n, lr="1", speed="40.0")


def _check_tables(md_path, png_path):
    text = open(md_path, encoding="utf-8").read()
    for title in ("Table 1", "Table 3", "Table 6"):
        assert f"## {title}" in text
    for name in ("local baseline", "infnet+", "Viterbi", "gradient descent", "oracle",
                 "instance-tailored infnet", "infnet as warm start for gradient descent",
                 "CNN+", "BLSTM+", "seq2seq+"):
        assert name in text, name
    # every command id used in a table is listed with its command
    refs = {part.split("]")[0] for part in text.split("[c")[1:]}
    for ref in refs:
        assert f"- `c{ref}`: `fairseq-generate" in text, ref
    with open(png_path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return text


def test_tables_and_plot_from_rows(tmp_path):
    results = str(tmp_path / "results.tsv")
    _fake_results(results)
    tables_main([results, "--out-md", str(tmp_path / "t.md"), "--out-png", str(tmp_path / "f.png")])
    text = _check_tables(tmp_path / "t.md", tmp_path / "f.png")
    assert "**92.00**" in text  # the best metric of the data set in bold (the oracle)
    assert "| toy | infnet+ | CNN+ |  | 10 | 600.0 | 12.00 | 0.17 |" in text  # speed-up
    assert "| 1.00 (acc)" not in text  # the valid (tuning) rows are not reported


@pytest.mark.slow
def test_benchmark_driver_on_a_tiny_corpus(tmp_path):
    """The driver end to end (2 to 3 minutes on a loaded 2-core machine): 1-epoch tiny
    networks, N grid {2}, two step sizes tuned on valid."""
    write_corpus(tmp_path / "raw", {"train": 120, "valid": 30, "test": 30}, seed=3)
    preprocess_tagging(tmp_path / "raw", tmp_path / "bin")
    run("train", tmp_path / "bin", "--user-dir", "engine_plugin", "--task", "sequence_labeling",
        "--arch", "blstm_crf_plus", "--criterion", "crf_nll", "--optimizer", "adam",
        "--lr", "0.01", "--batch-size", "32", "--max-epoch", "1", "--embed-dim", "8",
        "--hidden-size", "8", "--char-filters", "4", "--cpu", "--seed", "1",
        "--save-dir", tmp_path / "crf")
    work = tmp_path / "work"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", DATA_NAME="toy",
               EPOCHS="1", TRAIN_BATCH="32", HIDDEN="8", INFNET_ARGS="--embed-dim 8 --char-filters 4",
               GD_STEPS="2", GD_LRS="10 1", WARM_STEPS="2", WARM_LRS="1 0.1", TAILOR_STEPS="2",
               TAILOR_LRS="0.01")
    cmd = ["bash", "examples/tagging_benchmark.sh", str(tmp_path / "bin"),
           str(tmp_path / "crf" / "checkpoint_best.pt"), str(work), "tag_accuracy"]

    def bench():
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout

    out = bench()
    assert "== " in out and "done in" in out  # a progress line per stage
    rows = read_rows([str(work / "results.tsv")])
    test = [r for r in rows if r["split"] == "test"]
    assert {r["method"] for r in test} == METHODS
    for method in ("local", "infnet"):
        assert sorted(r["arch"] for r in test if r["method"] == method) == sorted(ARCHS)
    assert {r["lr"] for r in rows if r["split"] == "valid" and r["method"] == "gd"} == {"10", "1"}
    for r in test:
        assert r["command"].startswith("fairseq-generate ") and "--batch-size 10" in r["command"]
        assert r["metric_name"] == "acc" and float(r["sentences_per_s"]) > 0
        assert float(r["search_error"]) >= 0 and r["sentences"] == "30"
        if r["method"] in ("local", "infnet", "tailored", "warmstart"):
            assert r["train_command"].startswith("fairseq-train ")
    _check_tables(work / "tables.md", work / "speed_accuracy.png")

    # every training and decode is a stage: a second run skips them all
    stages = (work / "timings.tsv").read_text().splitlines()[1:]
    assert {"local_tagger_cnn_plus", "infnet_tagger_seq2seq_plus", "test_viterbi",
            "valid_gd_zero_N2_lr10", "test_gd_zero_N2_lr10"} <= {s.split("\t")[0] for s in stages}
    out = bench()
    assert "== [infnet_tagger_cnn_plus] already done" in out
    assert "== [test_gd_zero_N2_lr10] already done" in out and "training " not in out
    assert len(read_rows([str(work / "results.tsv")])) == len(rows)
    # FORCE=1 with ONLY= redoes the one decode named
    proc = subprocess.run(cmd, cwd=ROOT, env=dict(env, FORCE="1", ONLY="test_viterbi"),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== [test_viterbi] finished" in proc.stdout and "gd_zero" not in proc.stdout
    assert len(read_rows([str(work / "results.tsv")])) == len(rows) + 1


@pytest.mark.slow
def test_benchmark_driver_starts_infnets_from_local_baselines_or_the_energy(tmp_path):
    """INFNET_INIT=local: the local baseline is trained first and the infnet is fine-tuned from
    its weights (fairseq --finetune-from-model); without the local method it refuses.
    INFNET_INIT=energy: BLSTM infnets start from the energy's features and emissions."""
    write_corpus(tmp_path / "raw", {"train": 60, "valid": 20, "test": 20}, seed=4)
    preprocess_tagging(tmp_path / "raw", tmp_path / "bin")
    run("train", tmp_path / "bin", "--user-dir", "engine_plugin", "--task", "sequence_labeling",
        "--arch", "blstm_crf", "--criterion", "crf_nll", "--optimizer", "adam", "--lr", "0.01",
        "--batch-size", "32", "--max-epoch", "1", "--embed-dim", "8", "--hidden-size", "8",
        "--cpu", "--seed", "1", "--save-dir", tmp_path / "crf")
    work = tmp_path / "work"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", EPOCHS="1",
               TRAIN_BATCH="32", HIDDEN="8", INFNET_ARGS="--embed-dim 8 --char-filters 4",
               INFNET_INIT="local", METHODS="infnet local")
    cmd = ["bash", "examples/tagging_benchmark.sh", str(tmp_path / "bin"),
           str(tmp_path / "crf" / "checkpoint_best.pt"), str(work), "tag_accuracy",
           "tagger_cnn_plus"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    local = work / "local_tagger_cnn_plus" / "checkpoint_best.pt"
    logs = work / "logs"
    infnet_cmd = (logs / "infnet_tagger_cnn_plus.log.cmd").read_text()
    assert f"--finetune-from-model {local}" in infnet_cmd
    assert "--finetune-from-model" not in (logs / "local_tagger_cnn_plus.log.cmd").read_text()
    log = (logs / "infnet_tagger_cnn_plus.log").read_text()
    assert f"loading pretrained model from {local}" in log
    assert proc.stdout.index("training local_") < proc.stdout.index("training infnet_")

    # the speed benchmark of an infnet against Viterbi on the same data
    speed = subprocess.run(
        [sys.executable, "scripts/bench_tagging_speed.py", str(tmp_path / "bin"),
         str(work / "energy.pt"), "--method", f"cnn={work / 'infnet_tagger_cnn_plus'}/checkpoint_best.pt",
         "--repeats", "2", "--split-viterbi"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert speed.returncode == 0, speed.stderr[-3000:]
    table = speed.stdout.splitlines()
    assert table[0].startswith("| method | sentences/s (median of 2)")
    assert table[2].startswith("| Viterbi |") and table[2].endswith("| 1.00 |")
    assert table[3].startswith("| cnn |") and float(table[3].split("|")[2]) > 0
    parts = {row.split("|")[1].strip(): float(row.split("|")[2]) for row in table[7:]}
    assert set(parts) == {"energy features", "Viterbi DP", "cnn"} and min(parts.values()) > 0

    # a training stopped half-way (checkpoint, no WORK/.done marker) is redone, finished ones
    # skipped
    (work / ".done" / "infnet_tagger_cnn_plus").unlink()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "== [local_tagger_cnn_plus] already done" in proc.stdout
    assert "training local_" not in proc.stdout
    assert "training infnet_tagger_cnn_plus" in proc.stdout

    proc = subprocess.run(cmd, cwd=ROOT, env=dict(env, METHODS="infnet"), capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "needs local in METHODS" in proc.stderr

    # INFNET_INIT=energy: BLSTM infnets start from the energy's emissions, other archs refused
    energy_env = dict(env, INFNET_INIT="energy", METHODS="infnet")
    proc = subprocess.run(cmd, cwd=ROOT, env=energy_env, capture_output=True, text=True)
    assert proc.returncode == 2 and "not tagger_cnn_plus" in proc.stderr
    proc = subprocess.run(cmd[:-1] + ["tagger_blstm_plus"], cwd=ROOT, env=energy_env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    infnet_cmd = (logs / "infnet_tagger_blstm_plus.log.cmd").read_text()
    assert f"--finetune-from-model {work / 'energy_as_infnet.pt'}" in infnet_cmd
    assert "--hidden-size 8 --layers 1" in infnet_cmd  # the energy's sizes
    assert "loading pretrained model" in (logs / "infnet_tagger_blstm_plus.log").read_text()
