"""Tests for scripts/conll_to_fairseq.py (CoNLL-style files -> fairseq-preprocess line files)."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from scripts import conll_to_fairseq as c2f  # noqa: E402
from scripts.conll_to_fairseq import ConllFormatError  # noqa: E402

SCRIPT = os.path.join(REPO, "scripts", "conll_to_fairseq.py")
SHARED = os.path.join(REPO, "..", "shared", "data")


def _write(tmp_path, name, text, binary=False):
    p = tmp_path / name
    if binary:
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


def _run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def _conllu_row(i, form, upos="NOUN", xpos="NN", feats="_", head="0", deprel="root"):
    return "\t".join([str(i), form, form.lower(), upos, xpos, feats, head, deprel, "_", "_"])


# ----------------------------------------------------------------------------- parsing


def test_twitter_parses_tab_separated_and_blank_runs(tmp_path):
    # two blank lines between sentences and none at the end are both fine
    p = _write(tmp_path, "tw", "I\tO\nwon't\tV\n\n\n:)\tE\n#yolo\t#\n")
    assert c2f.read_sentences(p, "twitter") == [
        [("I", "O"), ("won't", "V")],
        [(":)", "E"), ("#yolo", "#")],
    ]


def test_conll2003_last_column_and_docstart_skipped(tmp_path):
    text = ("-DOCSTART- -X- -X- O\n\n"
            "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n\n"
            "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n\n")
    p = _write(tmp_path, "eng.train", text)
    assert c2f.read_sentences(p, "conll2003") == [
        [("EU", "B-ORG"), ("rejects", "O"), ("German", "B-MISC")],
        [("Peter", "B-PER"), ("Blackburn", "I-PER")],
    ]


CONLLU = "\n".join([
    "# sent_id = s1",
    "# text = I don't know.",
    _conllu_row(1, "I", "PRON", "PRP", "Case=Nom", "3", "nsubj"),
    "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
    _conllu_row(2, "do", "AUX", "VBP", "Mood=Ind", "4", "aux"),
    _conllu_row(3, "n't", "PART", "RB", "_", "4", "advmod"),
    _conllu_row(4, "know", "VERB", "VB", "VerbForm=Inf", "0", "root"),
    "4.1\tknows\tknow\tVERB\tVBZ\t_\t_\t_\t4:conj\t_",
    _conllu_row(5, ".", "PUNCT", ".", "_", "4", "punct"),
    "",
    "# sent_id = s2",
    _conllu_row(1, "Hi", "INTJ", "UH", "_", "0", "root"),
    "",
]) + "\n"


def test_conllu_default_upos_skips_comments_ranges_and_empty_nodes(tmp_path):
    p = _write(tmp_path, "x.conllu", CONLLU)
    assert c2f.read_sentences(p, "conllu") == [
        [("I", "PRON"), ("do", "AUX"), ("n't", "PART"), ("know", "VERB"), (".", "PUNCT")],
        [("Hi", "INTJ")],
    ]


@pytest.mark.parametrize("field, first, second", [
    ("XPOS+DEPREL", ["PRP+nsubj", "VBP+aux", "RB+advmod", "VB+root", ".+punct"], ["UH+root"]),
    ("upos+feats", ["PRON+Case=Nom", "AUX+Mood=Ind", "PART+_", "VERB+VerbForm=Inf", "PUNCT+_"],
     ["INTJ+_"]),
    ("DEPREL", ["nsubj", "aux", "advmod", "root", "punct"], ["root"]),
    ("LEMMA+HEAD", ["i+3", "do+4", "n't+4", "know+0", ".+4"], ["hi+0"]),
])
def test_conllu_field_combinations(tmp_path, field, first, second):
    p = _write(tmp_path, "x.conllu", CONLLU)
    sents = c2f.read_sentences(p, "conllu", field)
    assert [[lab for _, lab in s] for s in sents] == [first, second]
    assert [w for w, _ in sents[0]] == ["I", "do", "n't", "know", "."]


def test_parse_field_spec():
    assert c2f.parse_field_spec("XPOS+DEPREL") == [4, 7]
    assert c2f.parse_field_spec("form") == [1]
    for bad in ["", "POS", "XPOS+", "ID", "UPOS+UPOS"]:
        with pytest.raises(ValueError):
            c2f.parse_field_spec(bad)


def test_field_rejected_for_non_conllu(tmp_path):
    p = _write(tmp_path, "tw", "a\tN\n")
    with pytest.raises(ValueError, match="conllu"):
        c2f.read_sentences(p, "twitter", "UPOS")


def test_lowercase_words_not_labels(tmp_path):
    p = _write(tmp_path, "tw", "Hello\tINTJ\nWORLD\tNN\n")
    assert c2f.read_sentences(p, "twitter", lowercase=True) == [[("hello", "INTJ"), ("world", "NN")]]


def test_whitespace_in_word_is_error_unless_escaped(tmp_path):
    p = _write(tmp_path, "tw", "a\tN\n\u00a0\tG\n\u2014\u00a0launch\tN\n")
    with pytest.raises(ConllFormatError) as e:
        c2f.read_sentences(p, "twitter")
    assert e.value.line == 2 and p in str(e.value) and "--escape-whitespace" in str(e.value)
    sents = c2f.read_sentences(p, "twitter", escape_ws=True)
    assert sents == [[("a", "N"), ("<U+00A0>", "G"), ("\u2014<U+00A0>launch", "N")]]
    # non-whitespace oddities (zero-width space) are kept unchanged
    p2 = _write(tmp_path, "tw2", "\u200bx\tG\n")
    assert c2f.read_sentences(p2, "twitter") == [[("\u200bx", "G")]]


def test_crlf_and_bom_tolerated(tmp_path):
    p = _write(tmp_path, "tw", b"\xef\xbb\xbfa\tN\r\nb\tV\r\n\r\n", binary=True)
    assert c2f.read_sentences(p, "twitter") == [[("a", "N"), ("b", "V")]]


# ----------------------------------------------------------------------------- BIOES


@pytest.mark.parametrize("iob, bioes", [
    # IOB2
    ("B-PER I-PER O B-LOC", "B-PER E-PER O S-LOC"),
    ("B-ORG I-ORG I-ORG B-ORG", "B-ORG I-ORG E-ORG S-ORG"),
    ("B-PER B-PER", "S-PER S-PER"),
    ("O O", "O O"),
    ("B-MISC", "S-MISC"),
    # IOB1: chunks start with I- unless they follow a chunk of the same type
    ("I-PER I-PER I-LOC", "B-PER E-PER S-LOC"),
    ("I-PER B-PER", "S-PER S-PER"),
    ("O I-ORG I-ORG I-ORG O I-MISC", "O B-ORG I-ORG E-ORG O S-MISC"),
    ("I-PER B-PER I-PER", "S-PER B-PER E-PER"),
    ("", ""),
])
def test_iob_to_bioes(iob, bioes):
    assert c2f.iob_to_bioes(iob.split()) == bioes.split()


def test_iob_to_bioes_rejects_non_iob():
    with pytest.raises(c2f.TagSchemeError) as e:
        c2f.iob_to_bioes(["B-PER", "E-PER"])
    assert e.value.position == 1 and "drop --bioes" in str(e.value)
    with pytest.raises(ValueError):
        c2f.iob_to_bioes(["PER"])


def test_bioes_error_in_conversion_names_file_and_line(tmp_path):
    p = _write(tmp_path, "ner", "a x y O\n\nb x y B-PER\nc x y X-PER\n")
    with pytest.raises(ConllFormatError) as e:
        c2f.convert({"train": [p]}, "conll2003", str(tmp_path / "out"), bioes=True)
    assert f"{p}:4:" in str(e.value)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- top-k


def test_truncate_labels_counts_train_only():
    splits = {
        "train": [["A", "A", "B"], ["A", "C", "B"], ["D"]],  # A:3 B:2 C:1 D:1
        "valid": [["E", "E", "E", "E", "C"], ["A"]],          # E very frequent here, unseen in train
        "test": [["B", "D", "Z"]],
    }
    new, kept = c2f.truncate_labels(splits, 2)
    assert kept == ["A", "B"]
    assert new["train"] == [["A", "A", "B"], ["A", "*", "B"], ["*"]]
    assert new["valid"] == [["*", "*", "*", "*", "*"], ["A"]]
    assert new["test"] == [["B", "*", "*"]]
    # ties at the cut-off are broken by the label string: C < D
    _, kept3 = c2f.truncate_labels(splits, 3)
    assert kept3 == ["A", "B", "C"]
    # k larger than the label set keeps everything in train
    new_all, _ = c2f.truncate_labels(splits, 100)
    assert new_all["train"] == splits["train"] and new_all["valid"][0] == ["*"] * 4 + ["C"]


def test_the_rare_bucket_is_the_label_the_scorers_never_count_correct():
    """The bucket written by --top-k-labels is the package's RARE_LABEL: a bucketed gold
    label is wrong even where it is predicted, by the scorer and by the training metric."""
    import torch
    from fairseq.data import Dictionary

    from engine_plugin.data.labels import RARE_LABEL, LabelSpace
    from engine_plugin.scoring.tagging import accuracy_counts

    assert c2f.RARE_LABEL == RARE_LABEL
    new, _ = c2f.truncate_labels({"train": [["A", "A", "B"]], "test": [["B", "A"]]}, 1)
    assert accuracy_counts(new["test"], new["test"]) == (1, 2)
    labels = Dictionary()
    for label in ("A", *new["test"][0]):
        labels.add_symbol(label)
    space = LabelSpace(labels)
    gold = torch.tensor([[space.names.index(label) for label in new["test"][0]]])
    assert space.correct(gold, gold, torch.ones_like(gold, dtype=torch.bool)).tolist() == [
        [False, True]]


def test_truncate_labels_refuses_real_star_label():
    with pytest.raises(ValueError, match="real label"):
        c2f.truncate_labels({"train": [["*", "A"]]}, 1)
    with pytest.raises(ValueError):
        c2f.truncate_labels({"valid": [["A"]]}, 1)


# ----------------------------------------------------------------------------- bad input

BAD_INPUTS = [
    # (id, format, field, file content, line number the error must name)
    ("twitter-no-tab", "twitter", None, "a\tN\nb N\n", 2),
    ("twitter-three-fields", "twitter", None, "a\tN\n\nb\tN\tX\n", 3),
    ("twitter-missing-tag", "twitter", None, "a\tN\nb\t\n", 2),
    ("twitter-empty-word", "twitter", None, "\tN\n", 1),
    ("twitter-space-in-word", "twitter", None, "a\tN\nnew york\t^\n", 2),
    ("twitter-space-in-tag", "twitter", None, "a\tN \n", 1),
    ("twitter-whitespace-only-line", "twitter", None, "a\tN\n \t\nb\tN\n", 2),
    ("conll2003-three-columns", "conll2003", None, "EU NNP B-ORG\n", 1),
    ("conll2003-five-columns", "conll2003", None, "a b c O\n\nEU NNP B-NP B-ORG x\n", 3),
    ("conll2003-leading-space-empty-token", "conll2003", None, "a b c O\n b c O\n", 2),
    ("conll2003-docstart-in-sentence", "conll2003", None, "a b c O\n-DOCSTART- -X- -X- O\n", 2),
    ("conllu-nine-columns", "conllu", None,
     _conllu_row(1, "a") + "\n" + "\t".join(["2", "b", "b", "X", "X", "_", "1", "dep", "_"]) + "\n", 2),
    ("conllu-comment-only-sentence", "conllu", None,
     _conllu_row(1, "a") + "\n\n# sent_id = 2\n# text = nothing\n\n", 3),
    ("conllu-only-multiword-range", "conllu", None,
     "# c\n1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_\n\n", 1),
    ("conllu-bad-id", "conllu", None, _conllu_row(1, "a").replace("1", "x", 1) + "\n", 1),
    ("conllu-missing-blank-line", "conllu", None,
     _conllu_row(1, "a") + "\n" + _conllu_row(2, "b") + "\n" + _conllu_row(1, "c") + "\n", 3),
    ("conllu-empty-label-column", "conllu", "XPOS+DEPREL",
     _conllu_row(1, "a") + "\n" + _conllu_row(2, "b", xpos="") + "\n", 2),
    ("conllu-empty-form", "conllu", None, _conllu_row(1, "") + "\n", 1),
    ("conllu-comment-inside-sentence", "conllu", None,
     _conllu_row(1, "a") + "\n# late comment\n" + _conllu_row(2, "b") + "\n", 2),
    ("empty-file", "twitter", None, "", 1),
    ("only-blank-lines", "conll2003", None, "\n\n\n", 3),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_names_file_and_line(tmp_path, case):
    _, fmt, field, text, line = case
    p = _write(tmp_path, "bad.txt", text)
    with pytest.raises(ConllFormatError) as e:
        c2f.read_sentences(p, fmt, field)
    assert e.value.path == p and e.value.line == line
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}: ") and "fix:" in msg


def test_invalid_utf8_names_line(tmp_path):
    p = _write(tmp_path, "bad", b"a\tN\n\xff\xfe\tN\n", binary=True)
    with pytest.raises(ConllFormatError) as e:
        c2f.read_sentences(p, "twitter")
    assert e.value.line == 2 and "UTF-8" in str(e.value)


def test_missing_file_names_file(tmp_path):
    p = str(tmp_path / "nope.conll")
    with pytest.raises(ConllFormatError) as e:
        c2f.read_sentences(p, "twitter")
    assert p in str(e.value) and "does not exist" in str(e.value)


@pytest.mark.parametrize("case", [BAD_INPUTS[0], BAD_INPUTS[11], BAD_INPUTS[12]],
                         ids=["twitter", "conllu-columns", "conllu-empty-sentence"])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, case):
    _, fmt, field, text, line = case
    good = _write(tmp_path, "good.txt", _conllu_row(1, "ok") + "\n" if fmt == "conllu" else
                  ("ok\tN\n" if fmt == "twitter" else "ok x y O\n"))
    bad = _write(tmp_path, "bad.txt", text)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.me").write_text("previous run")
    args = ["--format", fmt, "--split", f"train={good}", "--split", f"valid={good},{bad}",
            "--out-dir", str(out)]
    if field:
        args += ["--field", field]
    r = _run(*args)
    assert r.returncode == 2, r.stderr
    assert f"{bad}:{line}:" in r.stderr and "Traceback" not in r.stderr
    assert sorted(os.listdir(out)) == ["keep.me"]  # no outputs, no temp files


def test_cli_missing_file_exits_2(tmp_path):
    out = tmp_path / "out"
    r = _run("--format", "twitter", "--split", f"train={tmp_path / 'missing'}", "--out-dir", str(out))
    assert r.returncode == 2 and "missing" in r.stderr and "does not exist" in r.stderr
    assert not out.exists()


def test_cli_usage_errors_exit_2(tmp_path):
    good = _write(tmp_path, "good", "a\tN\n")
    out = str(tmp_path / "out")
    for args in (
        ["--format", "twitter", "--split", f"valid={good}", "--out-dir", out],       # no train
        ["--format", "twitter", "--split", f"train={good}", "--split", f"train={good}",
         "--out-dir", out],                                                          # twice
        ["--format", "twitter", "--field", "UPOS", "--split", f"train={good}", "--out-dir", out],
        ["--format", "conllu", "--field", "NOPE", "--split", f"train={good}", "--out-dir", out],
        ["--format", "twitter", "--split", f"train{good}", "--out-dir", out],        # no '='
        ["--format", "twitter", "--top-k-labels", "0", "--split", f"train={good}", "--out-dir", out],
    ):
        r = _run(*args)
        assert r.returncode == 2, (args, r.stderr)
    assert not os.path.exists(out)


def test_write_failure_leaves_no_files(tmp_path):
    def boom():
        yield "a\n"
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        c2f._write_atomically(str(tmp_path), {"train.words": ["x\n"], "train.tags": boom()})
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- end to end


def _lines(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return f.read().split("\n")[:-1]


def test_cli_end_to_end_conll2003_bioes_topk(tmp_path):
    a = _write(tmp_path, "a.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
                                  "German JJ B-NP B-MISC\ncall NN I-NP O\n\n")
    b = _write(tmp_path, "b.txt", "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n\n"
                                  "BRUSSELS NNP B-NP B-LOC\n")
    v = _write(tmp_path, "v.txt", "New NNP B-NP B-LOC\nYork NNP I-NP I-LOC\nrains VBZ B-VP O\n")
    out = tmp_path / "out"
    r = _run("--format", "conll2003", "--bioes", "--top-k-labels", "3", "--lowercase",
             "--split", f"train={a},{b}", "--split", f"valid={v}", "--out-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == ["labels.txt", "train.tags", "train.words",
                                       "valid.tags", "valid.words"]
    tw, tt = _lines(out / "train.words"), _lines(out / "train.tags")
    assert tw == ["eu rejects german call", "peter blackburn", "brussels"]
    # train BIOES counts: O 2, S-ORG 1, S-MISC 1, B-PER 1, E-PER 1, S-LOC 1 -> top 3 = O, B-PER, E-PER
    assert tt == ["* O * O", "B-PER E-PER", "*"]
    assert _lines(out / "valid.tags") == ["* * O"]
    for split in ("train", "valid"):
        w, t = _lines(out / f"{split}.words"), _lines(out / f"{split}.tags")
        assert len(w) == len(t)
        assert [len(x.split(" ")) for x in w] == [len(x.split(" ")) for x in t]
    assert _lines(out / "labels.txt") == ["* 3", "O 2", "B-PER 1", "E-PER 1"]
    assert "train: 3 sentences, 7 tokens" in r.stderr
    assert "'*' rate 42.86% (3/7)" in r.stderr and "'*' rate 66.67% (2/3)" in r.stderr


def test_cli_end_to_end_conllu(tmp_path):
    p = _write(tmp_path, "x.conllu", CONLLU)
    out = tmp_path / "out"
    r = _run("--format", "conllu", "--field", "XPOS+DEPREL", "--split", f"train={p}",
             "--split", f"test={p}", "--out-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert _lines(out / "test.words") == ["I do n't know .", "Hi"]
    assert _lines(out / "test.tags") == ["PRP+nsubj VBP+aux RB+advmod VB+root .+punct", "UH+root"]


def test_cli_help():
    r = _run("--help")
    assert r.returncode == 0
    for opt in ("--format", "--field", "--bioes", "--top-k-labels", "--lowercase", "--split",
                "--out-dir", "--escape-whitespace", "XPOS+DEPREL"):
        assert opt in r.stdout


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="../shared/data not present")
def test_real_twitter_pos(tmp_path):
    d = os.path.join(SHARED, "twitter_pos")
    sizes = {"oct27.train": 1000, "oct27.dev": 327, "oct27.test": 500, "daily547.conll": 547}
    for name, n in sizes.items():
        sents = c2f.read_sentences(os.path.join(d, name), "twitter", escape_ws=True)
        assert len(sents) == n, name
    # the raw data has words that are or contain U+00A0, so the strict default must refuse it
    with pytest.raises(ConllFormatError, match="oct27.train:9891"):
        c2f.read_sentences(os.path.join(d, "oct27.train"), "twitter")
    out = tmp_path / "tw"
    stats = c2f.convert(
        {"train": [os.path.join(d, "oct27.train"), os.path.join(d, "oct27.dev")],
         "valid": [os.path.join(d, "oct27.test")], "test": [os.path.join(d, "daily547.conll")]},
        "twitter", str(out), escape_ws=True, log=open(os.devnull, "w"))
    assert stats["train"]["sentences"] == 1327 and stats["train"]["tokens"] == 14619 + 4823
    assert stats["valid"]["tokens"] == 7152 and stats["test"]["tokens"] == 7707
    assert len(stats["_labels"]) == 25
    assert sorted(stats["_labels"]) == sorted("! # $ & , @ A D E G L M N O P R S T U V X Y Z ^ ~".split())
    for split in ("train", "valid", "test"):
        w, t = _lines(out / f"{split}.words"), _lines(out / f"{split}.tags")
        assert len(w) == stats[split]["sentences"] == len(t)
        # fairseq's tokenizer splits on \s+, so check alignment the way fairseq will see it
        assert [len(x.split()) for x in w] == [len(x.split()) for x in t]


# --------------------------------------------------------- nothing lost: refusals and --force
def _snapshot(paths):
    return {str(p): (open(p, "rb").read(), os.stat(p).st_mode) for p in paths}


def test_cli_refuses_an_output_dir_with_earlier_outputs_unless_forced(tmp_path):
    train = _write(tmp_path, "train.txt", "a\tN\nb\tV\n\n")
    dev = _write(tmp_path, "dev.txt", "c\tN\n\n")
    out = tmp_path / "out"
    assert _run("--format", "twitter", "--split", f"train={train}", "--split",
                f"valid={dev}", "--split", f"extra={dev}", "--out-dir", out).returncode == 0
    earlier = _snapshot(sorted(out.iterdir()))
    proc = _run("--format", "twitter", "--split", f"train={train}", "--out-dir", out)
    assert proc.returncode == 2 and "already holds converted data" in proc.stderr
    assert "--force" in proc.stderr
    assert _snapshot(sorted(out.iterdir())) == earlier  # nothing touched
    forced = _run("--format", "twitter", "--split", f"train={train}", "--split",
                  f"valid={dev}", "--out-dir", out, "--force")
    assert forced.returncode == 0, forced.stderr
    # the stale split of the earlier run is gone, the rewritten ones are there
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.txt", "train.tags", "train.words", "valid.tags", "valid.words"]


def test_cli_refuses_an_input_that_is_also_an_output(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    train = _write(out, "train.words", "a\tN\nb\tV\n\n")  # an input named like an output
    before = _snapshot([train])
    for extra in ([], ["--force"]):
        proc = _run("--format", "twitter", "--split", f"train={train}", "--out-dir", out, *extra)
        assert proc.returncode == 2 and "is also the output train.words" in proc.stderr
        assert _snapshot([train]) == before
    assert sorted(p.name for p in out.iterdir()) == ["train.words"]


def test_outputs_get_the_umask_permissions(tmp_path):
    train = _write(tmp_path, "train.txt", "a\tN\n\n")
    old = os.umask(0o022)
    try:
        c2f.convert({"train": [str(train)]}, "twitter", str(tmp_path / "out"),
                    log=open(os.devnull, "w"))
    finally:
        os.umask(old)
    for path in (tmp_path / "out").iterdir():
        assert os.stat(path).st_mode & 0o777 == 0o644, path
