"""(slow) ``examples/multi30k/run.sh`` end to end on a tiny synthetic corpus laid out like
Multi30k's ``tok/`` directory: every stage, the 2x2 operator sub-table, ENGINE's checkpoint
selection by dev discrete energy, its authors' configuration and the earlier one
(``ENGINE_CONFIG=recipe``), the energy-plus-cross-entropy pairs (distilled corpus and
references), the test-time solvers with their dev-chosen step sizes, the converged distilled
CMLM and ENGINE from it (learning rate, seeds, control, references, three test sets), and
``ONLY=`` reruns of a single stage."""

import csv
import json
import os
import re
import subprocess

import pytest

from tests.cli import ROOT
from tests.fixtures.tiny_translation import write_corpus

SPLITS = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
LATER_TESTS = {"test_2017_flickr": ("valid", 20), "test_2017_mscoco": ("test", 10)}  # split, lines
CMLM_FAMILY = {"CMLM", "CMLM, distilled data", "ENGINE cmlm_infnet",
               "ENGINE cmlm_infnet, from the distilled CMLM",
               "distilled CMLM + energy + CE on distilled data",
               "distilled CMLM + CE on distilled data",
               "CMLM + energy + CE on references", "CMLM + CE on references"}
MAIN_SYSTEMS = (CMLM_FAMILY | {s + ", length by energy" for s in CMLM_FAMILY}
                | {"transformer teacher", "lstm teacher", "BiLSTM", "BiLSTM, distilled data",
                   "ENGINE bilstm_infnet (LSTM energy)"})
TINY = dict(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore", BPE_MERGES="20", LAYERS="1", DIM="16",
            FFN="32", HEADS="2", MAX_TOKENS="512", TEACHER_UPDATES="6", CMLM_UPDATES="4",
            ENGINE_UPDATES="4", ENGINE_VALID_EVERY="2", ENGINE_MAX_TOKENS="256",
            CELL_UPDATES="1", OPS_VALID="10", OPERATORS="sx st", GEN_BATCH="16",
            WARMSTART_STEPS="1 2", WARMSTART_TUNE_STEPS="1", WARMSTART_LRS="0.3 1",
            TAILOR_STEPS="1", TAILOR_TUNE_STEPS="1", TAILOR_LRS="1e-5 1e-4",
            CONVERGE_UPDATES="8", CONVERGE_VALID_EVERY="2", CONVERGE_PATIENCE="5",
            CONVERGED_LRS="1e-5 1e-4", CONVERGED_SEEDS="1 2")
SOLVER_LABELS = {"cmlm": "CMLM", "cmlm_distill": "CMLM, distilled data",
                 "engine_cmlm": "ENGINE cmlm_infnet"}


def _multi30k_layout(directory):
    """The tiny corpus under DIR/tok/{train,val,test_2016_flickr}.lc.norm.tok.{de,en}, each
    one-letter symbol spelt as a three-letter word, so that BPE has merges to learn; the later
    test sets are the val pairs (test_2017_flickr) and the first 10 test pairs (mscoco)."""
    raw = write_corpus(directory / "raw", {"train": 200, "valid": 20, "test": 20}, seed=5,
                       src="de", tgt="en")
    (directory / "tok").mkdir()
    for split, name in SPLITS.items():
        for lang in ("de", "en"):
            with open(os.path.join(raw, f"{split}.{lang}"), encoding="utf-8") as f:
                lines = [" ".join(s + s + "o" for s in line.split()) for line in f]
            (directory / "tok" / f"{name}.lc.norm.tok.{lang}").write_text("\n".join(lines) + "\n")
    for name, (split, count) in LATER_TESTS.items():
        for lang in ("de", "en"):
            lines = (directory / "tok" / f"{SPLITS[split]}.lc.norm.tok.{lang}").read_text()
            (directory / "tok" / f"{name}.lc.norm.tok.{lang}").write_text(
                "".join(lines.splitlines(keepends=True)[:count]))
    return directory


def _results(work):
    with open(work / "results.tsv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _stages(work):
    with open(work / "timings.tsv", encoding="utf-8") as f:
        return [line.split("\t")[0] for line in f.read().splitlines()[1:]]


def _run_recipe(data, work, **variables):
    """examples/multi30k/run.sh DATA WORK with the tiny sizes and VARIABLES; its stdout."""
    env = dict(os.environ, **TINY, **variables)
    proc = subprocess.run(["bash", "examples/multi30k/run.sh", str(data), str(work)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_multi30k_recipe_on_a_tiny_corpus(tmp_path):
    data = _multi30k_layout(tmp_path / "data")
    work = tmp_path / "work"

    def recipe(**extra):
        return _run_recipe(data, work, EXPERIMENTS="ref distill hybrid bilstm ops solvers converged",
                           **extra)

    out = recipe()
    assert "== [tables] finished" in out
    rows = _results(work)
    assert {r["system"] for r in rows if r["table"] == "main"} == MAIN_SYSTEMS
    cells = {r["system"] for r in rows if r["table"] == "operators"}
    assert cells == {"start", "sx,sx", "sx,st", "st,sx", "st,st"}
    for r in rows:
        assert float(r["bleu"]) >= 0 and float(r["energy"]) > 0, r
        assert r["command"].startswith("fairseq-generate ")
    engine = [r for r in rows if r["system"] == "ENGINE cmlm_infnet"]
    assert engine and all("engine_cmlm/checkpoint_best.pt" in r["command"] for r in engine)
    log = (work / "logs" / "engine_cmlm.log").read_text()
    assert log.count("| valid on 'valid' subset") >= 2  # every ENGINE_VALID_EVERY updates
    assert "energy_discrete" in log and "best_energy_discrete" in log
    authors = " ".join((work / "logs" / "engine_cmlm.log.cmd").read_text().split())
    assert ("--lr 1e-6 --weight-decay 0.01 --dropout 0.1 --max-tokens 256 --update-freq 8 "
            "--clip-norm 25 --normalize-by tokens --length-loss-factor 1 ") in authors
    assert authors.count("--ce-weight 0") == 1
    assert "| ENGINE cmlm_infnet | 1 | 1 |" in (work / "tables.md").read_text()
    _check_solver_rows(rows, work)
    _check_converged(work)
    # the energy + CE pairs: each continues its CMLM on its corpus, the energy's weight 1 and
    # 0, λ (PLUS_CE_WEIGHT) given once, both kept by dev BLEU
    for name, corpus, start, weight in (("distill_energy", "bin_distill", "cmlm_distill", "1"),
                                        ("distill_ce", "bin_distill", "cmlm_distill", "0"),
                                        ("ref_energy", "bin", "cmlm", "1"),
                                        ("ref_ce", "bin", "cmlm", "0")):
        cmd = (work / "logs" / f"{name}.log.cmd").read_text().split()
        assert cmd[1] == str(work / corpus), cmd[1]
        assert cmd[cmd.index("--finetune-from-model") + 1] == str(
            work / start / "checkpoint_best.pt")
        assert cmd[cmd.index("--energy-weight") + 1] == weight
        assert cmd.count("--ce-weight") == 1 and cmd[cmd.index("--ce-weight") + 1] == "1"
        assert "best_bleu" in (work / "logs" / f"{name}.log").read_text()

    # ONLY=: one finished stage redone (FORCE=1), nothing else run again
    before = _stages(work)
    out = recipe(ONLY="decode_engine_cmlm", FORCE="1")
    assert "== [decode_engine_cmlm] finished" in out and "== [cmlm]" not in out
    assert _stages(work) == before + ["decode_engine_cmlm"]

    # ENGINE_METRIC=bleu: ENGINE validated on dev BLEU, checkpoint_best by it; FORCE=1 starts
    # the training afresh from the CMLM; ENGINE_CONFIG=recipe: the earlier optimisation
    out = recipe(ONLY="engine_cmlm", FORCE="1", ENGINE_METRIC="bleu", ENGINE_CONFIG="recipe")
    assert "== [engine_cmlm] finished" in out
    log = (work / "logs" / "engine_cmlm.log").read_text()
    assert "| bleu " in log and "best_bleu" in log and "loading pretrained model" in log
    assert "num_updates 4" in log
    assert (work / "engine_cmlm" / "checkpoint_best.pt").exists()
    recipe_cmd = " ".join((work / "logs" / "engine_cmlm.log.cmd").read_text().split())
    assert ("--lr 1e-4 --weight-decay 0.01 --dropout 0.1 --max-tokens 256 --update-freq 1 "
            "--clip-norm 0 --normalize-by sentences --length-loss-factor 0.1 ") in recipe_cmd


def _check_solver_rows(rows, work):
    """Each SOLVER_MODELS model: its decode, warm starts N=1, 2 and tailoring N=1 at the step
    size of the better of its two dev rows; the teacher's timed searches; the figure."""
    test = {r["system"]: r for r in rows if r["table"] == "solvers"}
    dev = [r["system"] for r in rows if r["table"] == "solver_dev"]
    assert {"transformer teacher + beam 5", "transformer teacher + greedy"} <= set(test)
    for label in SOLVER_LABELS.values():
        assert f"{label} + infnet" in test
        for method, lrs in (("warmstart", ("0.3", "1")), ("tailored", ("1e-5", "1e-4"))):
            tuned = [f"{label} + {method} N=1 lr={lr}" for lr in lrs]
            assert [s for s in dev if s in tuned] == tuned
            steps = ("1", "2") if method == "warmstart" else ("1",)
            chosen = [s for s in test if s.startswith(f"{label} + {method} N=")]
            assert len(chosen) == len(steps) and len({s.split("lr=")[1] for s in chosen}) == 1
            assert chosen[0].split("lr=")[1] in lrs
    for row in test.values():
        assert float(row["sentences_per_s"]) > 0 and float(row["length_ratio"]) > 0, row
    assert (work / "solvers.png").stat().st_size > 0
    assert "| CMLM | warm start | 2 |" in (work / "tables.md").read_text()


def _check_converged(work):
    """cmlm_converged resumes the distilled CMLM (4 updates) and trains on to CONVERGE_UPDATES,
    validating dev BLEU every 2 updates."""
    log = (work / "logs" / "cmlm_converged.log").read_text()
    assert "num_updates 8" in log and "best_bleu" in log
    assert log.count("| valid on 'valid' subset") >= 2
    assert (work / "cmlm_converged" / "checkpoint_best.pt").exists()
    assert (work / "cmlm_converged.png").stat().st_size > 0


def _best_dev_energy(work, lr):
    log = (work / "logs" / f"converged_energy_distilled_lr{lr}_s1.log").read_text()
    return float(re.findall(r"best_energy_discrete ([-0-9.e+]+)", log)[-1])


@pytest.mark.slow
def test_engine_from_the_converged_cmlm(tmp_path):
    """engine_converged alone (with what it needs), on two of the test sets, length beam 1."""
    data = _multi30k_layout(tmp_path / "data")
    work = tmp_path / "work"
    out = _run_recipe(data, work, EXPERIMENTS="distill converged engine_converged",
                      LENGTH_BEAMS="1", TEST_SETS="test_2016_flickr test_2017_mscoco")
    assert "learning rate chosen on dev energy" in out
    _check_engine_converged(_results(work), work, {"test_2016_flickr": ("test", 20),
                                                   "test_2017_mscoco": ("test1", 10)})


def _check_breakdowns(rows, work, test_set, subset, count, names):
    """Each model's breakdown on SUBSET: every sentence, the teacher's beam energy as its
    results row has it."""
    teacher = [r for r in rows if r["table"] == f"converged {test_set}"
               and r["system"] == "transformer teacher"]
    assert len(teacher) == 1
    for name in names:
        summary = json.loads((work / "breakdown" / f"{name}.{subset}.json").read_text())
        assert summary["sentences"] == count
        assert summary["energy"]["beam"] == pytest.approx(float(teacher[0]["energy"]), abs=2e-3)
        assert "below the beam" in (work / "breakdown" / f"{name}.{subset}.md").read_text()


def _check_engine_converged(rows, work, test_sets):
    """The learning rate of the lower seed-1 dev energy; at it the other seed, the CE control
    and the references; every run and the converged CMLM decoded on the three test sets."""
    lr = min(("1e-5", "1e-4"), key=lambda value: _best_dev_energy(work, value))
    runs = [f"energy_distilled_lr{other}_s1" for other in ("1e-5", "1e-4")]
    runs += [f"{kind}_lr{lr}_s{seed}" for seed in (1, 2)
             for kind in ("energy_distilled", "ce_distilled", "energy_references")]
    runs = list(dict.fromkeys(runs))
    stages = _stages(work)
    for run in runs:
        assert f"converged_{run}" in stages and f"decode_converged_{run}" in stages, run
        cmd = (work / "logs" / f"converged_{run}.log.cmd").read_text().split()
        assert cmd.count("--seed") == 1 and cmd[cmd.index("--seed") + 1] == run[-1]
        assert cmd[cmd.index("--finetune-from-model") + 1] == str(
            work / "cmlm_converged" / "checkpoint_best.pt")
        assert cmd[1] == str(work / ("bin" if "references" in run else "bin_distill"))
        weights = ["--energy-weight", "0", "--ce-weight", "1"] if run.startswith("ce") else []
        assert " ".join(weights) in " ".join(cmd) and cmd.count("--lr") == 1
    for test_set, (subset, count) in test_sets.items():
        generated = (work / "gen" / f"converged.ce_distilled_lr{lr}_s2.{subset}.i10.b1.txt")
        assert generated.read_text().count("\nH-") == count
        systems = {r["system"] for r in rows if r["table"] == f"converged {test_set}"}
        assert {"converged distilled CMLM", "converged distilled CMLM, length by energy",
                f"ENGINE, references, lr={lr}, seed 2",
                f"cross-entropy control, distilled data, lr={lr}, seed 1"} <= systems
        assert len(systems) == 2 * (1 + len(runs)) + 1, systems  # and the teacher
        _check_breakdowns(rows, work, test_set, subset, count, ["cmlm_converged"] + [
            f"converged.{run}" for run in runs])
    tables = (work / "tables.md").read_text()
    assert all(f"#### {test_set}" in tables for test_set in test_sets)
    assert f"| ENGINE, distilled data, lr={lr} | 1,2 | 10 | 1 |" in tables
