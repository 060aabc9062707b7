"""scripts/search_error_analysis.py and scripts/eval_lm_sentence_ppl.py on hand-written
fairseq-generate / fairseq-eval-lm outputs, and (slow) examples/search_error_lm.sh end to end."""

import math
import os
import re
import subprocess

import pytest

from engine_plugin.report import parse_score_line
from scripts import eval_lm_sentence_ppl as ppl_script
from scripts import search_error_analysis as sea
from tests.cli import ROOT

LN2 = math.log(2)
WORDS = ["the dog runs", "a cat", "she sees the red house", "it flies", "the old book reads"]
GOLD = ["DET NOUN VERB", "DET NOUN", "PRON VERB DET ADJ NOUN", "PRON VERB", "DET ADJ NOUN VERB"]
VITERBI_E = [-10.0, -6.0, -20.0, -7.5, -15.0]


def write_generate(path, energies, labels=None, inference="viterbi", words=WORDS, gold=GOLD,
                   ids=None, search_error=None):
    """A fairseq-generate output for sequence_labeling: S/T/H/D/P lines in fairseq's unordered
    batch order, H- score = -E / ln 2, and the score line."""
    labels = labels or gold
    ids = list(range(len(energies))) if ids is None else ids
    lines = []
    for k in reversed(range(len(energies))):  # not in id order, as fairseq batches by length
        i = ids[k]
        score = -energies[k] / LN2
        lines += [f"S-{i}\t{words[k]}", f"T-{i}\t{gold[k]}", f"H-{i}\t{score!r}\t{labels[k]}",
                  f"D-{i}\t{score!r}\t{labels[k]}", f"P-{i}\t" + " ".join(["1.0"] * len(labels[k].split()))]
    se = "" if search_error is None else f" search_error={search_error:.4f}"
    lines.append(f"Generate test with beam=5: Accuracy = 50.00 (n_tokens=16) | "
                  f"inference={inference} energy=-1.0{se} sentences={len(energies)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ppl(path, ppls, texts, ids=None):
    ids = list(range(len(ppls))) if ids is None else ids
    rows = ["id\ttokens\tlogprob\tppl\ttext"]
    for i, p, t in zip(ids, ppls, texts):
        n = len(t.split()) + 1
        rows.append(f"{i}\t{n}\t{-n * math.log(p):.6f}\t{p:.6f}\t{t}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def files(tmp_path):
    """Viterbi; `mono` with search errors 0, 1, 2, 3, 4 on sentences ordered by word perplexity;
    word perplexities increasing with the search error, label perplexities decreasing."""
    vit = write_generate(tmp_path / "vit.txt", VITERBI_E)
    # sentence order by word perplexity: 1, 3, 0, 4, 2
    order = [1, 3, 0, 4, 2]
    word_ppl = [0.0] * 5
    se = [0.0] * 5
    for rank, i in enumerate(order):
        word_ppl[i] = 10.0 + 5 * rank
        se[i] = float(rank)
    label_ppl = [100.0 - p for p in word_ppl]
    mono_labels = list(GOLD)
    for i in range(5):
        if se[i] > 0:  # another labelling than Viterbi's where there is a search error
            tags = mono_labels[i].split()
            tags[0] = "X"
            mono_labels[i] = " ".join(tags)
    mono = write_generate(tmp_path / "mono.txt", [e + s for e, s in zip(VITERBI_E, se)],
                          mono_labels, inference="infnet", search_error=sum(se) / 5)
    wp = write_ppl(tmp_path / "word.tsv", word_ppl, WORDS)
    lp = write_ppl(tmp_path / "label.tsv", label_ppl, GOLD)
    return {"dir": tmp_path, "vit": vit, "mono": mono, "word": wp, "label": lp, "se": se}


def rows_by(rows):
    return {(r["method"], r["predictor"]): r for r in rows}


def test_monotone_search_error_gives_rho_one(files):
    rows, table = sea.analyse(files["vit"], [("mono", files["mono"])], files["word"], files["label"])
    r = rows_by(rows)
    assert r["mono", "word LM"]["rho"] == pytest.approx(1.0)
    assert r["mono", "word LM"]["n"] == 5
    assert r["mono", "word LM"]["p"] < 0.05
    assert r["mono", "label LM"]["rho"] == pytest.approx(-1.0)
    assert r["mono", "word LM"]["mean_se"] == pytest.approx(2.0, abs=1e-6)
    assert r["mono", "word LM"]["nonzero"] == pytest.approx(0.8)
    assert [row["search_error_mono"] for row in table] == pytest.approx(files["se"], abs=1e-6)
    assert [row["id"] for row in table] == [0, 1, 2, 3, 4]
    assert "length" in {row["predictor"] for row in rows}


def test_rho_matches_scipy_with_ties(files, tmp_path):
    from scipy.stats import spearmanr

    se = [0.0, 0.0, 3.0, 0.0, 1.5]
    labels = [GOLD[0], GOLD[1], "X" + GOLD[2][4:], GOLD[3], "X" + GOLD[4][3:]]
    gen = write_generate(tmp_path / "ties.txt", [e + s for e, s in zip(VITERBI_E, se)], labels,
                         inference="gd")
    word_ppl = [12.0, 30.0, 25.0, 8.0, 40.0]
    wp = write_ppl(tmp_path / "w2.tsv", word_ppl, WORDS)
    rows, _ = sea.analyse(files["vit"], [("gd", gen)], wp, None)
    expected = spearmanr(word_ppl, se)
    r = rows_by(rows)["gd", "word LM"]
    assert r["rho"] == pytest.approx(expected[0]) and r["p"] == pytest.approx(expected[1])
    assert ("gd", "label LM") not in rows_by(rows)


def test_cli_writes_markdown(files):
    out = files["dir"] / "out.md"
    tsv = files["dir"] / "out.tsv"
    sea.main(["--viterbi", str(files["vit"]), "--method", f"mono={files['mono']}",
              "--word-ppl", str(files["word"]), "--label-ppl", str(files["label"]),
              "--out-md", str(out), "--out-tsv", str(tsv)])
    md = out.read_text()
    assert re.search(r"^\| mono \| word LM \| 5 \| 1\.000 \| ", md, re.M), md
    assert re.search(r"^\| mono \| label LM \| 5 \| -1\.000 \| ", md, re.M), md
    header, *body = tsv.read_text().splitlines()
    assert header.split("\t") == ["id", "length", "energy_viterbi", "ppl_word", "ppl_label",
                                  "search_error_mono"]
    assert len(body) == 5


def test_no_search_error_gives_undefined_rho(files, tmp_path):
    same = write_generate(tmp_path / "same.txt", VITERBI_E, inference="gd")
    rows, _ = sea.analyse(files["vit"], [("gd", same)], files["word"], files["label"])
    assert all(math.isnan(r["rho"]) for r in rows)
    assert "| gd | word LM | 5 | – | – | 0.0000 | 0.0% |" in sea.render(rows)


def test_mismatched_ids_name_the_file(files, tmp_path):
    other = write_generate(tmp_path / "other.txt", VITERBI_E[:4], ids=[0, 1, 2, 7],
                           words=WORDS[:4], gold=GOLD[:4], inference="gd")
    with pytest.raises(sea.AnalysisError, match=r"other\.txt: sentence ids differ from .*vit\.txt"
                                                r".*2 missing \[3, 4\], 1 not in .*\[7\]"):
        sea.analyse(files["vit"], [("gd", other)], files["word"], files["label"])
    bad_ppl = write_ppl(tmp_path / "short.tsv", [10.0] * 4, WORDS[:4])
    with pytest.raises(sea.AnalysisError, match=r"short\.tsv: sentence ids differ"):
        sea.analyse(files["vit"], [("mono", files["mono"])], bad_ppl, None)


def test_ppl_table_of_another_split_is_refused(files, tmp_path):
    # the label LM scored predicted instead of gold labels, or another order
    swapped = write_ppl(tmp_path / "swapped.tsv", [1.0, 2.0, 3.0, 4.0, 5.0],
                        [GOLD[1], GOLD[0]] + GOLD[2:])
    with pytest.raises(sea.AnalysisError, match=r"swapped\.tsv: sentence 0 .* gold labels"):
        sea.analyse(files["vit"], [("mono", files["mono"])], None, swapped)
    # <unk> (rare words of the word LM) matches any word
    unk = write_ppl(tmp_path / "unk.tsv", [1.0, 2.0, 3.0, 4.0, 5.0],
                    ["<unk> dog runs"] + WORDS[1:])
    sea.analyse(files["vit"], [("mono", files["mono"])], unk, None)


def test_negative_search_error_is_an_error(files, tmp_path):
    labels = ["X NOUN VERB"] + GOLD[1:]
    lower = write_generate(tmp_path / "lower.txt", [VITERBI_E[0] - 0.5] + VITERBI_E[1:], labels,
                           inference="gd")
    with pytest.raises(sea.AnalysisError, match=r"lower\.txt: negative search error -0\.5.* "
                                                r"sentence 0"):
        sea.analyse(files["vit"], [("gd", lower)], files["word"], files["label"])
    # within float tolerance (1e-3 |E| + 1e-4) it is a tie with Viterbi: zero search error
    tie = write_generate(tmp_path / "tie.txt", [VITERBI_E[0] - 1e-4] + VITERBI_E[1:], labels,
                         inference="gd")
    rows, table = sea.analyse(files["vit"], [("gd", tie)], files["word"], files["label"])
    assert table[0]["search_error_gd"] == 0.0


def test_viterbi_labels_with_another_energy_is_an_error(files, tmp_path):
    other_energy = write_generate(tmp_path / "crf2.txt", [e + 1.0 for e in VITERBI_E],
                                  inference="infnet")
    with pytest.raises(sea.AnalysisError, match=r"crf2\.txt: sentence 0 has the Viterbi labels"
                                                r".*not the same CRF energy"):
        sea.analyse(files["vit"], [("infnet", other_energy)], None, None)


def test_viterbi_file_must_be_viterbi(files):
    with pytest.raises(sea.AnalysisError, match=r"mono\.txt: decoded with inference=infnet"):
        sea.analyse(files["mono"], [("v", files["vit"])], None, None)


def test_cli_exits_with_the_message(files, tmp_path):
    other = write_generate(tmp_path / "other.txt", VITERBI_E[:4], words=WORDS[:4], gold=GOLD[:4])
    with pytest.raises(SystemExit, match=r"error: .*other\.txt: sentence ids differ"):
        sea.main(["--viterbi", str(files["vit"]), "--method", f"gd={other}"])


# ---- scripts/eval_lm_sentence_ppl.py ---------------------------------------------------

def eval_lm_log(sentences, style, loss=None):
    """fairseq-eval-lm --output-word-probs lines for {id: [(token, ln p)]}, in either logger
    format, mixed with other log lines."""
    prefix = {"fairseq": "2026-01-01 10:00:00 | INFO | fairseq_cli.eval_lm | ",
              "basic": "INFO:fairseq_cli.eval_lm:"}[style]
    lines = [prefix + "{'_name': None, 'common': {}}", prefix + "/data/lm test 3 examples",
             "INFO:fairseq.tasks.fairseq_task:creating new batches for epoch 1"]
    for sid in sorted(sentences, reverse=True):
        lines.append(prefix + f"{sid} " + "\t".join(f"{w} [{s:2f}]" for w, s in sentences[sid]))
    if loss is None:
        total = sum(s for items in sentences.values() for _, s in items)
        count = sum(len(items) for items in sentences.values())
        loss = -total / count / LN2
    lines += [prefix + "Evaluated 9 tokens in 0.0s (1000.00 tokens/s)",
              prefix + f"Loss (base 2): {loss:.4f}, Perplexity: {2 ** loss:.2f}"]
    return "\n".join(lines) + "\n"


LM_SENTENCES = {0: [("the", -1.0), ("[dog]", -2.0), ("</s>", -0.5)],
                1: [("<unk>", -4.0), ("</s>", -1.0)],
                2: [("a", -0.25), ("b", -0.75), ("c", -1.5), ("</s>", -0.5)]}


@pytest.mark.parametrize("style", ["fairseq", "basic"])
def test_eval_lm_log_gives_per_sentence_perplexity(tmp_path, style):
    log = tmp_path / "eval_lm.log"
    log.write_text(eval_lm_log(LM_SENTENCES, style))
    text = tmp_path / "test.words"
    text.write_text("the [dog]\nzebra\na b c\n")
    rows = ppl_script.sentence_table(log, text)
    assert [r[0] for r in rows] == [0, 1, 2]
    assert [r[1] for r in rows] == [3, 2, 4]
    assert rows[0][2] == pytest.approx(-3.5)
    assert rows[0][3] == pytest.approx(math.exp(3.5 / 3))
    assert rows[1][3] == pytest.approx(math.exp(2.5))
    assert rows[2][3] == pytest.approx(math.exp(3.0 / 4))
    assert rows[1][4] == "<unk>"
    out = tmp_path / "ppl.tsv"
    ppl_script.main([str(log), "--text", str(text), "--out", str(out)])
    read = sea.read_ppl(out)
    assert read[2][0] == pytest.approx(math.exp(0.75), rel=1e-6)
    assert read[0][1] == ["the", "[dog]"]


def test_eval_lm_log_checks(tmp_path):
    log = tmp_path / "eval_lm.log"
    log.write_text(eval_lm_log(LM_SENTENCES, "fairseq"))
    text = tmp_path / "test.words"
    text.write_text("the [dog]\nzebra\na b c\nmissing sentence\n")
    with pytest.raises(ppl_script.EvalLmError, match=r"scores 3 sentences but .*test\.words has 4"
                                                     r" \(missing ids \[3\]"):
        ppl_script.sentence_table(log, text)
    text.write_text("the [dog]\nzebra\na b d\n")
    with pytest.raises(ppl_script.EvalLmError, match=r"sample 2 is 'a b c </s>' but line 3"):
        ppl_script.sentence_table(log, text)
    text.write_text("the [dog]\nzebra\na b c\n")
    log.write_text(eval_lm_log(LM_SENTENCES, "fairseq", loss=1.0))
    with pytest.raises(ppl_script.EvalLmError, match=r"base-2 loss of 1\.8\d+ but eval-lm reports 1\.0000"):
        ppl_script.sentence_table(log, text)
    log.write_text(eval_lm_log({**LM_SENTENCES, 1: [("<unk>", float("-inf")), ("</s>", -1.0)]},
                               "fairseq", loss=1.0))
    with pytest.raises(ppl_script.EvalLmError, match=r"sentence 1: log-probability of '<unk>' is -inf"):
        ppl_script.sentence_table(log, text)
    log.write_text("INFO:fairseq_cli.eval_lm:Loss (base 2): 1.0000, Perplexity: 2.00\n")
    with pytest.raises(ppl_script.EvalLmError, match=r"no per-sentence lines.*--output-word-probs"):
        ppl_script.sentence_table(log, text)


# ---- the recipe, end to end ----------------------------------------------------------------

@pytest.mark.slow
def test_search_error_recipe_end_to_end(tmp_path):
    """Tiny corpus -> CRF + CNN infnet (as in test_tagging_cli) -> examples/search_error_lm.sh
    with tiny LSTM LMs. About 2 minutes on 2 busy cores."""
    from examples.quickstart.make_corpus import write_corpus
    from tests.cli import preprocess_tagging, run

    raw, bin_ = tmp_path / "raw", tmp_path / "bin"
    write_corpus(raw, {"train": 200, "valid": 30, "test": 30}, seed=1)
    preprocess_tagging(raw, bin_)
    common = ["--user-dir", "engine_plugin", "--task", "sequence_labeling", "--optimizer", "adam",
              "--lr", "0.01", "--batch-size", "16", "--cpu", "--seed", "1",
              "--no-epoch-checkpoints", "--embed-dim", "16", "--hidden-size", "16",
              "--log-format", "simple"]
    crf = tmp_path / "crf" / "checkpoint_last.pt"
    run("train", bin_, *common, "--arch", "blstm_crf", "--criterion", "crf_nll",
        "--char-filters", "8", "--max-epoch", "2", "--save-dir", tmp_path / "crf")
    run("train", bin_, *common, "--arch", "tagger_cnn", "--criterion", "energy_loss",
        "--energy-path", crf, "--ce-weight", "0.5", "--o2", "sx", "--max-epoch", "1",
        "--save-dir", tmp_path / "infnet")
    work = tmp_path / "work"
    env = dict(os.environ, LM_DIM="16", LM_EPOCHS="2", OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", "examples/search_error_lm.sh", raw, bin_, crf,
                           tmp_path / "infnet" / "checkpoint_last.pt", work],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    md = (work / "search_error.md").read_text()
    rows = re.findall(r"^\| (gd|infnet) \| (word LM|label LM|length) \| (\d+) \| (\S+) \| (\S+) "
                      r"\| (\S+) \| ", md, re.M)
    assert len(rows) == 6, md
    assert all(int(n) == 30 for _, _, n, *_ in rows)
    for method in ("word", "label"):
        table = sea.read_ppl(work / f"{method}_ppl.tsv")
        assert sorted(table) == list(range(30))
        assert all(p > 1 for p, _ in table.values())
    # the per-sentence search errors average to what fairseq-generate's score line reports
    for method in ("gd", "infnet"):
        final = (work / f"generate.{method}.txt").read_text().strip().splitlines()[-1]
        reported = float(parse_score_line(final).fields["search_error"])
        mean = [float(m) for meth, pred, _, _, _, m in rows if meth == method and pred == "length"]
        assert mean[0] == pytest.approx(reported, abs=1e-3)
    # the untrained-enough infnet makes search errors on most sentences: rho is defined
    infnet_rhos = [float(r) for meth, _, _, r, _, _ in rows if meth == "infnet"]
    assert all(-1 <= r <= 1 for r in infnet_rhos)
