"""The Python helpers of the recipes: the ENGINE presets as shell defaults, the translation
results queue, output statistics and solver table, the IWSLT'14 sample, and the stage runner
of ``examples/common.sh``."""

import csv
import os
import subprocess

import pytest

from scripts import (engine_preset, iwslt14_sample, translation_outputs, translation_results,
                     translation_seed_table, translation_solver_table, translation_tables)
from tests.cli import ROOT

TABLE = os.path.join(ROOT, "examples", "engine_presets.tsv")


def _bash(script: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})))


# ---- engine_preset.py ------------------------------------------------------------------
def test_presets_layer_recipe_then_smoke_under_the_environment():
    rows = engine_preset.read_table(TABLE)
    multi30k = engine_preset.resolve(rows, "multi30k")
    iwslt = engine_preset.resolve(rows, "iwslt14")
    assert (multi30k["LAYERS"], iwslt["LAYERS"]) == ("3", "6")
    for values in (multi30k, iwslt):  # ENGINE's authors' configuration by default
        assert (values["ENGINE_LR"], values["ENGINE_UPDATE_FREQ"], values["ENGINE_CLIP_NORM"],
                values["ENGINE_NORMALIZE_BY"], values["ENGINE_LENGTH_LOSS"]) == (
            "1e-6", "8", "25", "tokens", "1")
    recipe = engine_preset.resolve(rows, "multi30k", engine_config="recipe")
    assert (recipe["ENGINE_LR"], recipe["ENGINE_UPDATE_FREQ"], recipe["ENGINE_CLIP_NORM"],
            recipe["ENGINE_NORMALIZE_BY"], recipe["ENGINE_LENGTH_LOSS"]) == (
        "1e-4", "1", "0", "sentences", "0.1")
    both = engine_preset.resolve(rows, "iwslt14", smoke=True, engine_config="recipe")
    assert both["ENGINE_UPDATE_FREQ"] == "1" and both["ENGINE_LR"] == "1e-4"
    assert both["LAYERS"] == "1" and both["DROPOUT"] == iwslt["DROPOUT"]  # no smoke value
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        engine_preset.resolve(rows, "nope")
    with pytest.raises(ValueError, match="authors or recipe"):
        engine_preset.resolve(rows, "multi30k", engine_config="paper")


def test_shell_defaults_keep_the_environment_and_follow_references(tmp_path):
    defaults = tmp_path / "defaults.sh"
    proc = subprocess.run(["python", "scripts/engine_preset.py", TABLE, "multi30k"], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    defaults.write_text(proc.stdout)
    shown = _bash(f'source {defaults}; echo "$LAYERS|$LSTM_UPDATES|$BILSTM_UPDATES|'
                  f'$MAX_TRAIN|$OPERATORS"', env={"LAYERS": "2", "TEACHER_UPDATES": "7"})
    assert shown.stdout.strip() == "2|7|1000||sx stl sg st gx"


def test_preset_table_checks(tmp_path):
    bad = tmp_path / "bad.tsv"
    header = "variable\ta\tsmoke\trecipe\tmeaning\n"
    bad.write_text(header + "X\t$Y\t\t\tx\nY\t1\t\t\ty\n")
    with pytest.raises(ValueError, match=r"X \(a\) refers to \$Y, which is not defined above"):
        engine_preset.read_table(str(bad))
    bad.write_text(header + "X\t$(rm -rf /)\t\t\tx\n")
    with pytest.raises(ValueError, match="only letters"):
        engine_preset.read_table(str(bad))
    bad.write_text(header + "X\t\t1\t\tx\n")
    with pytest.raises(ValueError, match="X has no a value"):
        engine_preset.read_table(str(bad))


def test_markdown_table_lists_every_variable():
    rows = engine_preset.read_table(TABLE)
    text = engine_preset.markdown(rows, ["iwslt14", "wmt16"])
    lines = text.splitlines()
    assert lines[0] == ("| variable | iwslt14 | wmt16 | SMOKE=1 | ENGINE_CONFIG=recipe | "
                        "meaning |")
    assert len(lines) == 2 + len(rows)
    assert "| `TEACHER_UPDATES` | `100000` | `300000` | `20` |  |" in text
    assert "| `MAX_TRAIN` | all | all | `1000` |  |" in text


# ---- translation_results.py ------------------------------------------------------------
def test_queue_then_merge_with_energies(tmp_path, capsys):
    out = tmp_path / "gen.txt"
    out.write_text("H-0\t-1.0\ta b\nGenerate test with beam=1: BLEU = 12.34 45.6/20.1/9.0/4.2 "
                   "(BP = 1.000 ratio = 1.02 hyp_len = 100 ref_len = 98)\n")
    (tmp_path / "gen.txt.err").write_text(
        "INFO | fairseq_cli.generate | Translated 20 sentences (100 tokens) in 0.5s "
        "(40.00 sentences/s, 200.00 tokens/s)\n")
    queue, results = tmp_path / "q.tsv", tmp_path / "results.tsv"
    for system, beam in (("CMLM", "1"), ("CMLM", "3")):
        assert translation_results.main([
            "queue", str(queue), "--log", str(out), "--speed-log", f"{out}.err", "--table",
            "main", "--system", system, "--iterations", "1", "--length-beam", beam,
            "--command", f"fairseq-generate BIN --iter-decode-with-beam {beam}"]) == 0
    assert "BLEU=12.34  (40.00 sentences/s)" in capsys.readouterr().out
    energies = tmp_path / "energies.tsv"
    energies.write_text(f"{out}\t20\t55.5\t66.6\n")
    assert translation_results.main(["merge", str(queue), str(results),
                                     "--energies", str(energies)]) == 0
    assert translation_results.main(["merge", str(queue), str(results)]) == 0  # no energies
    with open(results, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [(r["length_beam"], r["bleu"], r["energy"], r["energy_lstm"]) for r in rows] == [
        ("1", "12.34", "55.5", "66.6"), ("3", "12.34", "55.5", "66.6"),
        ("1", "12.34", "-", "-"), ("3", "12.34", "-", "-")]
    assert rows[1]["command"] == "fairseq-generate BIN --iter-decode-with-beam 3"
    assert (rows[0]["sentences_per_s"], rows[0]["length_ratio"], rows[0]["comma_share"]) == (
        "40.00", "1.02", "0.00")


# A NAT output: three hypotheses of 4, 2 and 0 words; P- lines have <s> and </s> positions.
NAT_OUTPUT = (
    "H-0\t-1.0\ta , b ,\nP-0\t0 -1 -1 -1 -1 -1 0\n"      # 5 tokens (b in two pieces)
    "H-1\t-1.0\tc d\nP-1\t0 -1 -1 0\n"                  # 2 tokens
    "H-2\t-1.0\t\nP-2\t0 0\n"                           # nothing at all
    "Generate test with beam=1: BLEU = 5.00 40.0/10.0/5.0/1.0 (BP = 1.000 ratio = 0.857 "
    "hyp_len = 6 ref_len = 7) | special_pad=0.00% special_unk=12.50% special_bos=0.00% "
    "special_early_eos=2.50% slots=8\n")


def test_output_statistics_of_hand_made_outputs(tmp_path):
    nat = tmp_path / "nat.txt"
    nat.write_text(NAT_OUTPUT)
    assert translation_outputs.output_statistics(str(nat)) == {
        "length_ratio": "0.857", "comma_share": "33.33", "bpe_per_word": "1.167",
        "special_share": "15.00"}
    ar = tmp_path / "ar.txt"  # the stock generator: no <s> position, no special_* fields
    ar.write_text("H-0\t-1.0\ta b\nP-0\t-1 -1 -1 0\n"
                  "Generate test with beam=5: BLEU = 9.00 1/1/1/1 (BP = 1 ratio = 1.100 "
                  "hyp_len = 2 ref_len = 2)\n")
    assert translation_outputs.output_statistics(str(ar), autoregressive=True) == {
        "length_ratio": "1.100", "comma_share": "0.00", "bpe_per_word": "1.500",
        "special_share": "-"}
    empty = tmp_path / "empty.txt"  # a decode that failed before writing anything
    empty.write_text("")
    assert set(translation_outputs.output_statistics(str(empty)).values()) == {"-"}


def test_results_written_before_the_new_columns_gain_them(tmp_path):
    results = tmp_path / "results.tsv"
    old_columns = translation_tables.REQUIRED
    results.write_text("\t".join(old_columns) + "\n"
                       "main\tteacher\tAR\tbeam 5\t34.75\t8.4\t-\tfairseq-generate X\n")
    before = results.read_text()
    queue = tmp_path / "q.tsv"
    queue.write_text("\t".join(["solvers", "CMLM + infnet", "1", "1", "15.2", "98.1", "1.1",
                                "2.0", "1.25", "0.00", "gen/a.txt", "fairseq-generate Y"]) + "\n")
    assert translation_results.main(["merge", str(queue), str(results)]) == 0
    rows = translation_tables.read_results(str(results))
    teacher = rows[("main", "teacher", "AR", "beam 5")]
    assert (teacher["bleu"], teacher["sentences_per_s"], teacher["command"]) == (
        "34.75", "-", "fairseq-generate X")
    cmlm = rows[("solvers", "CMLM + infnet", "1", "1")]
    assert (cmlm["sentences_per_s"], cmlm["bpe_per_word"], cmlm["energy"]) == ("98.1", "1.25", "-")
    assert results.read_text().splitlines()[0].split("\t") == translation_tables.COLUMNS
    assert results.read_text().count("fairseq-generate X") == before.count("fairseq-generate X")
    foreign = tmp_path / "foreign.tsv"
    foreign.write_text("table\tsurprise\nmain\tx\n")
    assert translation_results.main(["merge", str(queue), str(foreign)]) == 2
    assert foreign.read_text() == "table\tsurprise\nmain\tx\n"  # refused, left as it was


def test_best_picks_the_highest_bleu_and_the_first_of_equals(tmp_path, capsys):
    paths = {}
    for value, bleu in (("0.3", "20.52"), ("1", "21.31"), ("3", "21.31")):
        paths[value] = tmp_path / f"lr{value}.txt"
        paths[value].write_text(f"H-0\t-1\ta\nGenerate valid with beam=1: BLEU = {bleu} "
                                "1/1/1/1 (BP = 1 ratio = 1 hyp_len = 1 ref_len = 1)\n")
    assert translation_results.main(["best", *(f"{v}={p}" for v, p in paths.items())]) == 0
    assert capsys.readouterr().out.strip() == "1"
    broken = tmp_path / "broken.txt"
    broken.write_text("Traceback ...\n")
    assert translation_results.main(["best", f"1={paths['1']}", f"10={broken}"]) == 2
    assert f"{broken}: no BLEU score line" in capsys.readouterr().err
    assert translation_results.main(["best", str(broken)]) == 2
    assert "expected VALUE=GEN_OUT" in capsys.readouterr().err


def test_solver_table_and_figure(tmp_path):
    results = tmp_path / "results.tsv"
    lines = ["\t".join(translation_tables.COLUMNS)]
    for table, system, bleu, speed in (
            ("solvers", "transformer teacher + beam 5", "34.7", "83.6"),
            ("solvers", "CMLM + infnet", "15.2", "98.0"),
            ("solvers", "CMLM + warmstart N=10 lr=1", "21.0", "19.0"),
            ("solvers", "CMLM + warmstart N=5 lr=1", "19.0", "33.0"),
            ("solvers", "CMLM, distilled data + tailored N=1 lr=1e-3", "20.0", "50.0"),
            ("solver_dev", "CMLM + warmstart N=10 lr=0.3", "20.5", "18.7")):
        lines.append("\t".join([table, system, "1", "1", bleu, "50.0", "-", speed, "1.0",
                                "0.5", "1.3", "0.00", "fairseq-generate"]))
    results.write_text("\n".join(lines) + "\n")
    rows = translation_tables.read_results(str(results))
    table = translation_solver_table.solver_table(rows)
    assert table[2] == ("| transformer teacher | beam 5 |  |  | 34.7 | 50.0 | 1.0 | 0.5 | 1.3 "
                        "| 0.00 | 83.6 |")
    assert table[4] == "| CMLM | warm start | 10 | 1 | 21.0 | 50.0 | 1.0 | 0.5 | 1.3 | 0.00 | 19.0 |"
    assert translation_solver_table.dev_table(rows)[2] == (
        "| CMLM | warm start | 10 | 0.3 | 20.5 | 50.0 |")
    curves = translation_solver_table._curves(
        [(translation_solver_table.parse_system(s), r) for (t, s, _, _), r in rows.items()
         if t == "solvers"])
    assert curves[("CMLM", "warmstart")] == [(98.0, 15.2, "0"), (33.0, 19.0, "5"),
                                             (19.0, 21.0, "10")]
    assert curves[("CMLM, distilled data", "tailored")] == [(50.0, 20.0, "1")]
    with pytest.raises(ValueError, match="expected 'MODEL \\+ METHOD"):
        translation_solver_table.parse_system("CMLM warmstart")
    png = tmp_path / "solvers.png"
    translation_tables.main([str(results), "--out-png", str(png)])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_seed_table_averages_seeds_per_test_set(tmp_path, capsys):
    results = tmp_path / "results.tsv"
    lines = ["\t".join(translation_tables.COLUMNS)]
    for table, system, lbeam, bleu, energy in (
            ("converged t16", "ENGINE, distilled data, lr=1e-5, seed 1", "1", "20.0", "40.0"),
            ("converged t16", "ENGINE, distilled data, lr=1e-5, seed 2", "1", "22.0", "-"),
            ("converged t16", "ENGINE, distilled data, lr=1e-5, seed 2", "3", "25.0", "30.0"),
            ("converged t16", "converged distilled CMLM", "1", "19.5", "50.0"),
            ("converged coco", "ENGINE, distilled data, lr=1e-5, seed 1", "1", "10.0", "60.0"),
            ("main", "CMLM", "1", "15.0", "70.0")):
        lines.append("\t".join([table, system, "1", lbeam, bleu, energy, "-", "90.0", "1.0",
                                "0.5", "1.3", "0.00", "fairseq-generate"]))
    results.write_text("\n".join(lines) + "\n")
    table = translation_seed_table.seed_tables(translation_tables.read_results(str(results)))
    assert table[0] == "#### t16" and table.index("#### coco") == 8
    assert table[4] == ("| ENGINE, distilled data, lr=1e-5 | 1,2 | 1 | 1 | 21.00 ± 1.41 | 40.00 "
                        "| 1.000 ± 0.000 | 0.50 ± 0.00 | 1.300 ± 0.000 | 0.00 ± 0.00 |")
    assert table[5].startswith("| ENGINE, distilled data, lr=1e-5 | 2 | 1 | 3 | 25.00 | 30.00 |")
    assert table[6].startswith("| converged distilled CMLM | - | 1 | 1 | 19.50 | 50.00 |")
    assert table[-1].startswith("| ENGINE, distilled data, lr=1e-5 | 1 | 1 | 1 | 10.00 |")
    assert translation_seed_table.split_seed("CMLM, seed 12, x") == ("CMLM, seed 12, x", "")
    translation_tables.main([str(results)])
    assert "### From the converged distilled CMLM, mean ± sd over seeds" in capsys.readouterr().out


def test_merge_refuses_an_output_without_energy(tmp_path, capsys):
    queue = tmp_path / "q.tsv"
    queue.write_text("main\tCMLM\t1\t1\t" + "\t" * 5 + "\tgen/a.txt\tcmd\n")  # nothing measured
    energies = tmp_path / "e.tsv"
    energies.write_text("gen/b.txt\t20\t1.0\n")
    assert translation_results.main(["merge", str(queue), str(tmp_path / "r.tsv"),
                                     "--energies", str(energies)]) == 2
    assert "no energy of gen/a.txt" in capsys.readouterr().err
    rows = translation_results.merged_rows(str(queue), {"gen/a.txt": ["7.0"]})
    assert (rows[0]["bleu"], rows[0]["energy"], rows[0]["energy_lstm"]) == ("-", "7.0", "-")


# ---- iwslt14_sample.py -----------------------------------------------------------------
def test_iwslt14_sample_keeps_each_pair_once_in_first_seen_order(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "sample_a.de").write_text("a\nb\na\n")
    (samples / "sample_a.en").write_text("A\nB\nA\n")
    (samples / "sample_b.de-en.tsv").write_text("c\tC\nb\tB\nb\tX\n")
    assert iwslt14_sample.main([str(samples), str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "train.de").read_text() == "a\nb\nc\nb\n"
    assert (tmp_path / "out" / "train.en").read_text() == "A\nB\nC\nX\n"
    (samples / "sample_b.de-en.tsv").write_text("c\tC\td\n")
    assert iwslt14_sample.main([str(samples), str(tmp_path / "out2")]) == 2


# ---- the stage runner ------------------------------------------------------------------
def test_stage_skips_finished_stages_and_honours_force_and_only(tmp_path):
    work = tmp_path / "work"
    script = (f'source examples/common.sh; WORK={work}; mkdir -p "$WORK"; '
              'count() { echo "ran $1 forced=${STAGE_FORCED:-}" >> "$WORK/runs"; }; '
              'stage one count one; stage two count two; stage three false; echo unreachable')
    first = _bash(script)
    assert first.returncode != 0 and "unreachable" not in first.stdout
    assert (work / "runs").read_text() == "ran one forced=\nran two forced=\n"
    assert sorted(os.listdir(work / ".done")) == ["one", "two"]
    second = _bash(script.replace("stage three false; ", ""))
    assert "== [one] already done" in second.stdout
    assert (work / "runs").read_text().count("ran") == 2
    _bash(script.replace("stage three false; ", ""), env={"FORCE": "1", "ONLY": "two,four"})
    assert (work / "runs").read_text().splitlines()[-1] == "ran two forced=1"
    timings = (work / "timings.tsv").read_text().splitlines()
    assert timings[0] == "stage\tseconds\tfinished"
    assert [line.split("\t")[0] for line in timings[1:]] == ["one", "two", "two"]


@pytest.mark.parametrize("folder, preset", [("multi30k", "multi30k"),
                                            ("iwslt14_de_en", "iwslt14"),
                                            ("wmt16_ro_en", "wmt16")])
def test_translation_readmes_show_their_presets_defaults(folder, preset):
    """Each ENGINE recipe's README holds the variable table of its preset as the table file
    has it now (regenerate: python scripts/engine_preset.py examples/engine_presets.tsv
    --markdown PRESET)."""
    with open(os.path.join(ROOT, "examples", folder, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    rows = engine_preset.read_table(TABLE)
    assert engine_preset.markdown(rows, [preset]) in readme


def test_only_takes_names_and_shell_patterns(tmp_path):
    work = tmp_path / "work"
    (tmp_path / "three_file").write_text("")  # a pattern must not expand to file names
    script = (f'cd {tmp_path}; source {ROOT}/examples/common.sh; WORK={work}; mkdir -p "$WORK"; '
              'count() { echo "$1" >> "$WORK/runs"; }; '
              'for s in one two three decode_one; do stage $s count $s; done')
    assert _bash(script, env={"ONLY": "t*, decode_one"}).returncode == 0
    assert (work / "runs").read_text() == "two\nthree\ndecode_one\n"
    assert _bash(script, env={"ONLY": "*_one"}).returncode == 0
    assert (work / "runs").read_text().splitlines()[3:] == []  # decode_one done already
    assert _bash(script, env={"ONLY": "o*"}).returncode == 0
    assert (work / "runs").read_text().splitlines()[3:] == ["one"]
