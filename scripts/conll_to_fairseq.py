#!/usr/bin/env python3
"""Convert CoNLL-style tagging files into aligned line files for ``fairseq-preprocess``.

Tagging data goes through stock ``fairseq-preprocess`` as a parallel corpus: the source
side is words and the target side is tags. For every split this writes

    OUT/{split}.words   one sentence per line, tokens separated by single spaces
    OUT/{split}.tags    the same sentences' labels, the same number of tokens per line

plus ``OUT/labels.txt``, the train split's final labels with counts, most frequent first
(``label count`` per line, the same format as a fairseq ``dict.txt``). It is for
information only.

Input formats (``--format``)
----------------------------
``twitter``
    ``word<TAB>tag``, one token per line, blank line between sentences (ARK Twitter POS,
    ``*.conll`` / ``oct27.*``). Every line must have exactly two tab-separated fields.
``conll2003``
    ``word POS chunk NER``: exactly 4 columns separated by spaces (or tabs). The label is
    the last column. ``-DOCSTART-`` lines are skipped.
``conllu``
    CoNLL-U: 10 tab-separated columns ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS
    MISC``. ``#`` comment lines, multi-word token ranges (ID ``3-4``) and empty nodes
    (ID ``8.1``) are skipped; the word is FORM. ``--field`` picks the label: one column
    name, or several joined with ``+`` (e.g. ``XPOS+DEPREL`` gives labels like
    ``NN+nsubj``: the column values joined with a ``+``). Default: ``UPOS``. A column's
    ``_`` is kept literally (e.g. ``NOUN+_`` for UPOS+FEATS with no features).

In every format, one or more blank lines separate sentences and a file may end with or
without a blank line. A line holding only spaces/tabs is an error (make it empty).

Options
-------
``--bioes``
    Convert IOB labels (IOB1 or IOB2, or a mix) to BIOES. Type-aware: a chunk starts at
    ``B-X``, or at ``I-X`` whose previous label is not ``B-X``/``I-X``; a chunk of one
    token becomes ``S-X``, longer chunks ``B-X I-X... E-X``.
``--top-k-labels K``
    Keep the K labels most frequent **in the train split** (ties broken by the label
    string, so the result is deterministic); every other label in every split becomes
    ``*``. The ``*`` rate per split is printed.
``--lowercase``
    Lower-case the words (never the labels).
``--escape-whitespace``
    fairseq splits lines on any Unicode whitespace (``\\s+``, e.g. U+00A0 NO-BREAK
    SPACE), so a word containing whitespace would break the alignment of words and tags.
    Such a word is an error by default; with this flag each whitespace character inside
    a word is replaced by ``<U+XXXX>`` (its code point) and the number of words changed
    is printed. Labels containing whitespace are always an error.

Errors
------
Malformed input (wrong column count, empty word, missing label, whitespace in a token, a
CoNLL-U sentence without words, a missing file, invalid UTF-8, ...) raises
:class:`ConllFormatError` naming the file and line and saying how to fix it. The CLI
prints it and exits with status 2. Nothing is written unless every input was read
successfully, and outputs are written to temporary files that are renamed into place
only at the end. No sentence or token is ever dropped silently.

Usage
-----
    python scripts/conll_to_fairseq.py --format twitter \\
        --split train=oct27.train,oct27.dev --split valid=oct27.test \\
        --split test=daily547.conll --escape-whitespace --out-dir data-tw

    fairseq-preprocess --source-lang words --target-lang tags \\
        --trainpref data-tw/train --validpref data-tw/valid --testpref data-tw/test ...

Importable as ``scripts.conll_to_fairseq`` from the repository root.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
from typing import Dict, Iterable, List, Optional, Sequence, TextIO, Tuple

FORMATS = ("twitter", "conll2003", "conllu")
CONLLU_COLUMNS = (
    "ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC",
)
FIELD_JOINER = "+"
DEFAULT_CONLLU_FIELD = "UPOS"
# engine_plugin.data.labels.RARE_LABEL, spelt here because importing the plugin loads torch
# and fairseq (5 s for a text converter); tests/test_conll_to_fairseq.py checks they are equal
RARE_LABEL = "*"
TRAIN_SPLIT = "train"

Token = Tuple[str, str]  # (word, label)

_CONLLU_INT_ID = re.compile(r"[1-9][0-9]*")
_CONLLU_RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")
_CONLLU_EMPTY_ID = re.compile(r"[0-9]+\.[1-9][0-9]*")
_COLUMN_SEP_2003 = re.compile(r"[ \t]+")
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class ConllFormatError(ValueError):
    """Bad input data. ``str(err)`` reads ``FILE:LINE: problem -- fix: ...``."""

    def __init__(self, path: str, line: Optional[int], problem: str, fix: Optional[str] = None):
        self.path = path
        self.line = line
        self.problem = problem
        self.fix = fix
        where = f"{path}:{line}" if line is not None else f"{path}"
        msg = f"{where}: {problem}"
        if fix:
            msg += f" -- fix: {fix}"
        super().__init__(msg)


class TagSchemeError(ValueError):
    """A label sequence is not valid IOB. ``position`` is the 0-based token index."""

    def __init__(self, position: int, message: str):
        self.position = position
        super().__init__(message)


class Sentence:
    """One sentence read from ``path``; ``lines[i]`` is the 1-based line of token i."""

    __slots__ = ("path", "lines", "words", "labels")

    def __init__(self, path: str, lines: List[int], words: List[str], labels: List[str]):
        self.path = path
        self.lines = lines
        self.words = words
        self.labels = labels

    def pairs(self) -> List[Token]:
        return list(zip(self.words, self.labels))


# --------------------------------------------------------------------------- parsing


def parse_field_spec(spec: str) -> List[int]:
    """``"XPOS+DEPREL"`` -> CoNLL-U column indices ``[4, 7]`` (names case-insensitive)."""
    if spec is None or not spec.strip():
        raise ValueError("empty --field; give CoNLL-U column names joined with '+', e.g. XPOS+DEPREL")
    names = spec.split(FIELD_JOINER)
    indices = []
    for name in names:
        key = name.strip().upper()
        if key not in CONLLU_COLUMNS or key == "ID":
            raise ValueError(
                f"unknown CoNLL-U column {name!r} in --field {spec!r}; choose from "
                f"{' '.join(CONLLU_COLUMNS[1:])}, joined with '+' (e.g. XPOS+DEPREL)"
            )
        idx = CONLLU_COLUMNS.index(key)
        if idx in indices:
            raise ValueError(f"column {key} given twice in --field {spec!r}")
        indices.append(idx)
    return indices


def _has_whitespace(s: str) -> bool:
    # str.isspace is exactly what fairseq's tokenize_line (re \s+) and str.split() split on.
    return any(ch.isspace() for ch in s)


def escape_whitespace(word: str) -> str:
    """Replace each whitespace character in ``word`` by ``<U+XXXX>``."""
    return "".join(f"<U+{ord(ch):04X}>" if ch.isspace() else ch for ch in word)


def _iter_lines(path: str) -> Iterable[Tuple[int, str]]:
    """Yield ``(line_number, text)``; strips ``\\n``/``\\r\\n`` and a UTF-8 BOM."""
    if not os.path.exists(path):
        raise ConllFormatError(path, None, "file does not exist", "check the FILE given to --split")
    if os.path.isdir(path):
        raise ConllFormatError(path, None, "is a directory, not a file", "give a file to --split")
    with open(path, "rb") as f:  # binary: split on b"\n" only, never on other line breaks
        for lineno, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConllFormatError(
                    path, lineno, f"not valid UTF-8 ({e.reason} at byte {e.start} of the line)",
                    "re-encode the file as UTF-8, e.g. with iconv -t UTF-8",
                ) from None
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield lineno, text


def _check_token(path: str, lineno: int, word: str, label: str, what_label: str,
                 escape_ws: bool) -> Tuple[str, bool]:
    """Validate one token; returns the (possibly escaped) word and whether it changed."""
    if word == "":
        raise ConllFormatError(path, lineno, "empty word", "every token line needs a non-empty word")
    if label == "":
        raise ConllFormatError(path, lineno, f"missing {what_label}", f"give every token a {what_label}")
    if _has_whitespace(label):
        raise ConllFormatError(
            path, lineno, f"{what_label} {label!r} contains whitespace",
            "labels must not contain spaces or other whitespace; remove it in the input file",
        )
    if _has_whitespace(word):
        if not escape_ws:
            raise ConllFormatError(
                path, lineno, f"word {word!r} contains whitespace, which would break the "
                "one-sentence-per-line format",
                "pass --escape-whitespace to replace it by <U+XXXX>, or fix the input file",
            )
        return escape_whitespace(word), True
    return word, False


def _read_file(path: str, fmt: str, field: Optional[str] = None, lowercase: bool = False,
               escape_ws: bool = False) -> Tuple[List[Sentence], int]:
    """Parse one file. Returns ``(sentences, number_of_words_whose_whitespace_was_escaped)``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt == "conllu":
        columns = parse_field_spec(field if field is not None else DEFAULT_CONLLU_FIELD)
        label_name = FIELD_JOINER.join(CONLLU_COLUMNS[i] for i in columns) + " label"
    else:
        if field is not None:
            raise ValueError(f"--field only applies to --format conllu, not {fmt}")
        columns = []
        label_name = "tag" if fmt == "twitter" else "NER tag (last column)"

    sentences: List[Sentence] = []
    n_escaped = 0
    lines: List[int] = []
    words: List[str] = []
    labels: List[str] = []
    block_start: Optional[int] = None  # conllu: first line of the current block (comments too)
    next_id = 1  # conllu: expected next integer ID
    last_line = 0

    def flush(end_line: int) -> None:
        nonlocal lines, words, labels, block_start, next_id
        if words:
            sentences.append(Sentence(path, lines, words, labels))
        elif fmt == "conllu" and block_start is not None:
            raise ConllFormatError(
                path, block_start,
                f"sentence (lines {block_start}-{end_line}) has no syntactic words "
                "(only comments, multi-word ranges or empty nodes)",
                "every CoNLL-U sentence needs rows with integer IDs; remove the block or add them",
            )
        lines, words, labels = [], [], []
        block_start = None
        next_id = 1

    for lineno, text in _iter_lines(path):
        last_line = lineno
        if text == "":
            flush(lineno - 1)
            continue
        if text.strip(" \t") == "":
            raise ConllFormatError(
                path, lineno, "line holds only spaces/tabs",
                "make it an empty line if it separates sentences, or add the missing token",
            )

        if fmt == "twitter":
            parts = text.split("\t")
            if len(parts) != 2:
                raise ConllFormatError(
                    path, lineno, f"expected 2 tab-separated fields (word<TAB>tag), found {len(parts)}: {text!r}",
                    "write exactly one word, one TAB and one tag per line",
                )
            word, label = parts

        elif fmt == "conll2003":
            parts = _COLUMN_SEP_2003.split(text)
            if parts[0] == "-DOCSTART-":
                if words:
                    raise ConllFormatError(
                        path, lineno, "-DOCSTART- line inside a sentence",
                        "put a blank line before the -DOCSTART- line",
                    )
                continue
            if len(parts) != 4:
                raise ConllFormatError(
                    path, lineno, f"expected 4 space-separated columns (word POS chunk NER), found {len(parts)}: {text!r}",
                    "write 'word POS chunk NER' on each token line; leading/trailing spaces count as empty columns",
                )
            word, label = parts[0], parts[-1]

        else:  # conllu
            if block_start is None:
                block_start = lineno
            if text.startswith("#"):
                if words:
                    raise ConllFormatError(
                        path, lineno, "comment line after the words of a sentence",
                        "separate sentences with a blank line; comments go before a sentence's first word",
                    )
                continue
            parts = text.split("\t")
            if len(parts) != 10:
                raise ConllFormatError(
                    path, lineno, f"expected 10 tab-separated CoNLL-U columns, found {len(parts)}: {text!r}",
                    "use tabs (not spaces) between the 10 columns ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC",
                )
            tok_id = parts[0]
            if _CONLLU_RANGE_ID.fullmatch(tok_id) or _CONLLU_EMPTY_ID.fullmatch(tok_id):
                continue  # multi-word token range or empty node: not a syntactic word
            if not _CONLLU_INT_ID.fullmatch(tok_id):
                raise ConllFormatError(
                    path, lineno, f"bad ID {tok_id!r}",
                    "IDs are integers (1, 2, ...), ranges (3-4) or empty nodes (8.1)",
                )
            if int(tok_id) != next_id:
                raise ConllFormatError(
                    path, lineno, f"ID {tok_id} where {next_id} was expected",
                    "word IDs must run 1, 2, 3, ... within a sentence; is a blank line between sentences missing?",
                )
            next_id += 1
            word = parts[1]
            for i in columns:
                if parts[i] == "":
                    raise ConllFormatError(
                        path, lineno, f"column {CONLLU_COLUMNS[i]} is empty",
                        "CoNLL-U uses '_' for an unspecified value, never an empty field",
                    )
            label = FIELD_JOINER.join(parts[i] for i in columns)

        if lowercase:
            word = word.lower()
        word, changed = _check_token(path, lineno, word, label, label_name, escape_ws)
        n_escaped += changed
        lines.append(lineno)
        words.append(word)
        labels.append(label)

    flush(last_line)
    if not sentences:
        raise ConllFormatError(
            path, last_line or 1, "no sentences found (file is empty or holds no token lines)",
            "check the file and --format",
        )
    return sentences, n_escaped


def read_sentences(path: str, fmt: str, field: Optional[str] = None, lowercase: bool = False,
                   escape_ws: bool = False) -> List[List[Token]]:
    """Read a CoNLL-style file into a list of sentences, each a list of ``(word, label)``.

    ``fmt`` is ``twitter``, ``conll2003`` or ``conllu``; ``field`` (CoNLL-U only) is a
    column name or ``+``-joined names (default ``UPOS``). Raises :class:`ConllFormatError`.
    """
    sentences, _ = _read_file(path, fmt, field, lowercase, escape_ws)
    return [s.pairs() for s in sentences]


# --------------------------------------------------------------------------- labels


def _parse_iob(tag: str, position: int) -> Tuple[str, Optional[str]]:
    if tag == "O":
        return "O", None
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
        return tag[0], tag[2:]
    hint = " (already BIOES? then drop --bioes)" if tag[:2] in ("E-", "S-") else ""
    raise TagSchemeError(
        position, f"label {tag!r} is not IOB (expected O, B-TYPE or I-TYPE){hint}"
    )


def iob_to_bioes(tags: Sequence[str]) -> List[str]:
    """Convert one sentence's IOB1 or IOB2 tags to BIOES.

    A chunk starts at ``B-X`` or at an ``I-X`` not preceded by ``B-X``/``I-X``, and
    continues while the following tags are ``I-X``. ``I-PER B-PER`` is two chunks.
    Raises :class:`TagSchemeError` for a tag that is not ``O``/``B-X``/``I-X``.
    """
    parsed = [_parse_iob(t, i) for i, t in enumerate(tags)]
    out = []
    for i, (prefix, typ) in enumerate(parsed):
        if prefix == "O":
            out.append("O")
            continue
        prev_p, prev_t = parsed[i - 1] if i > 0 else ("O", None)
        next_p, next_t = parsed[i + 1] if i + 1 < len(parsed) else ("O", None)
        starts = prefix == "B" or prev_p == "O" or prev_t != typ
        ends = not (next_p == "I" and next_t == typ)
        if starts and ends:
            out.append("S-" + typ)
        elif starts:
            out.append("B-" + typ)
        elif ends:
            out.append("E-" + typ)
        else:
            out.append("I-" + typ)
    return out


def count_labels(label_seqs: Iterable[Sequence[str]]) -> "collections.Counter[str]":
    counts: "collections.Counter[str]" = collections.Counter()
    for seq in label_seqs:
        counts.update(seq)
    return counts


def _by_frequency(counts: "collections.Counter[str]") -> List[Tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def select_top_k(counts: "collections.Counter[str]", k: int) -> List[str]:
    """The ``k`` most frequent labels (ties broken by the label string)."""
    if k < 1:
        raise ValueError(f"--top-k-labels must be >= 1, got {k}")
    return [label for label, _ in _by_frequency(counts)[:k]]


def truncate_labels(splits: Dict[str, List[List[str]]], k: int, train: str = TRAIN_SPLIT,
                    unk: str = RARE_LABEL) -> Tuple[Dict[str, List[List[str]]], List[str]]:
    """Keep the ``k`` labels most frequent in ``splits[train]``; map all others to ``unk``.

    ``splits`` maps a split name to its label sequences. Counting uses the train split
    only; the mapping applies to every split. Returns ``(new_splits, kept_labels)``.
    Raises ``ValueError`` if ``unk`` already occurs as a real label.
    """
    if train not in splits:
        raise ValueError(f"--top-k-labels needs a '{train}' split to count labels on")
    for name, seqs in splits.items():
        if any(unk in seq for seq in seqs):
            raise ValueError(
                f"label {unk!r} occurs in split {name!r} as a real label, so it cannot also "
                "stand for truncated labels"
            )
    kept = select_top_k(count_labels(splits[train]), k)
    keep = set(kept)
    new = {name: [[t if t in keep else unk for t in seq] for seq in seqs]
           for name, seqs in splits.items()}
    return new, kept


# --------------------------------------------------------------------------- conversion


def _output_names(splits: Dict[str, List[str]]) -> List[str]:
    return [f"{name}.{side}" for name in splits for side in ("words", "tags")] + ["labels.txt"]


def _earlier_outputs(out_dir: str) -> List[str]:
    """Names in ``out_dir`` that look like an earlier run's outputs."""
    if not os.path.isdir(out_dir):
        return []
    return sorted(n for n in os.listdir(out_dir)
                  if n == "labels.txt" or n.endswith((".words", ".tags")))


def check_output_dir(splits: Dict[str, List[str]], out_dir: str, force: bool) -> List[str]:
    """Refuses outputs that would overwrite an input, and (unless ``force``) an ``out_dir``
    holding an earlier run's outputs. Returns the earlier outputs this run would not rewrite
    (stale splits, removed after a forced run has written its own)."""
    outputs = {os.path.realpath(os.path.join(out_dir, n)): n for n in _output_names(splits)}
    for files in splits.values():
        for path in files:
            if os.path.realpath(path) in outputs:
                raise ValueError(
                    f"input {path} is also the output {outputs[os.path.realpath(path)]} of "
                    f"--out-dir {out_dir}: choose another --out-dir (nothing was written)")
    earlier = _earlier_outputs(out_dir)
    if earlier and not force:
        raise ValueError(
            f"--out-dir {out_dir} already holds converted data ({', '.join(earlier)}): "
            "choose a new directory, or pass --force to replace it (nothing was written)")
    return [n for n in earlier if n not in set(outputs.values())]


def _write_atomically(out_dir: str, contents: Dict[str, Iterable[str]]) -> None:
    """Write every ``name -> lines`` to a temp file in ``out_dir``, then rename all.

    The files get the permissions of any new file (0666 less the umask), not mkstemp's 0600.
    """
    umask = os.umask(0)
    os.umask(umask)
    temps: Dict[str, str] = {}
    try:
        for name, lines in contents.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            temps[name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                for line in lines:
                    f.write(line)
            os.chmod(tmp, 0o666 & ~umask)
        for name, tmp in temps.items():
            os.replace(tmp, os.path.join(out_dir, name))
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)


def convert(splits: Dict[str, List[str]], fmt: str, out_dir: str, field: Optional[str] = None,
            bioes: bool = False, top_k: Optional[int] = None, lowercase: bool = False,
            escape_ws: bool = False, log: Optional[TextIO] = None,
            force: bool = False) -> Dict[str, dict]:
    """Read every split's files, transform labels, and write ``OUT/{split}.words|tags``.

    ``splits`` maps split name -> list of input files (concatenated in that order); it
    must contain ``train``. Nothing is written if any input fails, if an input is also an
    output, or if ``out_dir`` holds earlier outputs and ``force`` is False (with ``force``
    the earlier splits this run does not rewrite are removed). Returns per-split
    statistics (``sentences``, ``tokens``, ``labels``, ``unk_tokens``, ``unseen_tokens``,
    ``escaped_words``) and ``"_labels"``: the train label counts written to labels.txt.
    """
    log = sys.stderr if log is None else log
    if TRAIN_SPLIT not in splits:
        raise ValueError(f"a '{TRAIN_SPLIT}' split is required (--split {TRAIN_SPLIT}=FILE[,FILE...])")
    for name, files in splits.items():
        if not _SPLIT_NAME.fullmatch(name):
            raise ValueError(f"bad split name {name!r}; use letters, digits, '_', '.', '-'")
        if not files:
            raise ValueError(f"split {name!r} has no files")
    if top_k is not None and top_k < 1:
        raise ValueError(f"--top-k-labels must be >= 1, got {top_k}")
    stale = check_output_dir(splits, out_dir, force)

    data: Dict[str, List[Sentence]] = {}
    escaped: Dict[str, int] = {}
    for name, files in splits.items():
        data[name] = []
        escaped[name] = 0
        for path in files:
            sents, n_esc = _read_file(path, fmt, field, lowercase, escape_ws)
            data[name].extend(sents)
            escaped[name] += n_esc

    iob_i_starts = 0
    if bioes:
        for sents in data.values():
            for s in sents:
                try:
                    new = iob_to_bioes(s.labels)
                except TagSchemeError as e:
                    raise ConllFormatError(
                        s.path, s.lines[e.position], str(e),
                        "--bioes needs NER tags in IOB1 or IOB2 (O, B-TYPE, I-TYPE)",
                    ) from None
                iob_i_starts += sum(1 for old, nw in zip(s.labels, new)
                                    if old.startswith("I-") and nw[:2] in ("B-", "S-"))
                s.labels = new

    label_seqs = {name: [s.labels for s in sents] for name, sents in data.items()}
    original_train_labels = count_labels(label_seqs[TRAIN_SPLIT])
    if top_k is not None:
        label_seqs, _kept = truncate_labels(label_seqs, top_k)
        for name, sents in data.items():
            for s, seq in zip(sents, label_seqs[name]):
                s.labels = seq
    train_counts = count_labels(label_seqs[TRAIN_SPLIT])
    train_label_set = set(train_counts)

    stats: Dict[str, dict] = {}
    for name, sents in data.items():
        toks = sum(len(s.words) for s in sents)
        counts = count_labels(s.labels for s in sents)
        stats[name] = {
            "sentences": len(sents),
            "tokens": toks,
            "labels": len(counts),
            "unk_tokens": counts.get(RARE_LABEL, 0) if top_k is not None else 0,
            "unseen_tokens": sum(c for lab, c in counts.items() if lab not in train_label_set),
            "escaped_words": escaped[name],
            "files": list(splits[name]),
        }

    # Everything is in memory and valid: now (and only now) touch the output directory.
    os.makedirs(out_dir, exist_ok=True)
    contents: Dict[str, Iterable[str]] = {}
    for name, sents in data.items():
        for s in sents:
            assert len(s.words) == len(s.labels) and s.words
        contents[f"{name}.words"] = (" ".join(s.words) + "\n" for s in sents)
        contents[f"{name}.tags"] = (" ".join(s.labels) + "\n" for s in sents)
    contents["labels.txt"] = (f"{lab} {c}\n" for lab, c in _by_frequency(train_counts))
    _write_atomically(out_dir, contents)
    for name in stale:
        os.remove(os.path.join(out_dir, name))

    p = "[conll_to_fairseq]"
    what = fmt + (f" field={field or DEFAULT_CONLLU_FIELD}" if fmt == "conllu" else "")
    print(f"{p} format {what}; output in {out_dir}", file=log)
    if bioes:
        print(f"{p} --bioes: IOB -> BIOES ({iob_i_starts} chunks began with I-, i.e. IOB1 style)", file=log)
    if top_k is not None:
        print(f"{p} --top-k-labels {top_k}: train had {len(original_train_labels)} distinct labels; "
              f"kept {min(top_k, len(original_train_labels))}, the rest -> '{RARE_LABEL}'", file=log)
        ranked = _by_frequency(original_train_labels)
        if len(ranked) > top_k and ranked[top_k - 1][1] == ranked[top_k][1]:
            c = ranked[top_k - 1][1]
            tied = [lab for lab, n in ranked if n == c]
            kept_tied = sum(1 for _lab, n in ranked[:top_k] if n == c)
            print(f"{p} note: {len(tied)} labels tie at train count {c} across the cut-off; "
                  f"the first {kept_tied} of them in label-string order were kept", file=log)
    for name, st in stats.items():
        line = (f"{p} {name}: {st['sentences']} sentences, {st['tokens']} tokens, "
                f"{st['labels']} distinct labels")
        if top_k is not None:
            rate = 100.0 * st["unk_tokens"] / st["tokens"]
            line += f"; '{RARE_LABEL}' rate {rate:.2f}% ({st['unk_tokens']}/{st['tokens']})"
        if name != TRAIN_SPLIT and st["unseen_tokens"]:
            line += f"; {st['unseen_tokens']} tokens carry labels not in train"
        if st["escaped_words"]:
            line += f"; {st['escaped_words']} word(s) had whitespace escaped as <U+XXXX>"
        line += f"  [{', '.join(st['files'])}]"
        print(line, file=log)
    stats["_labels"] = dict(train_counts)
    return stats


# --------------------------------------------------------------------------- CLI


def _parse_split(arg: str) -> Tuple[str, List[str]]:
    name, sep, files = arg.partition("=")
    if not sep or not name or not files:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE[,FILE...], got {arg!r}")
    paths = files.split(",")
    if any(p == "" for p in paths):
        raise argparse.ArgumentTypeError(f"empty file name in {arg!r}")
    return name, paths


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="conll_to_fairseq.py",
        description=(
            "Convert CoNLL-style tagging files into aligned OUT/{split}.words and\n"
            "OUT/{split}.tags (one sentence per line, space-separated, equal token counts)\n"
            "for fairseq-preprocess --source-lang words --target-lang tags. Also writes\n"
            "OUT/labels.txt (train label counts). Exits with status 2 on bad input,\n"
            "without writing any output."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "example:\n"
            "  python scripts/conll_to_fairseq.py --format twitter --escape-whitespace \\\n"
            "      --split train=oct27.train,oct27.dev --split valid=oct27.test \\\n"
            "      --split test=daily547.conll --out-dir data-tw\n"
            "  python scripts/conll_to_fairseq.py --format conllu --field XPOS+DEPREL \\\n"
            "      --top-k-labels 400 --split train=en_ewt-ud-train.conllu \\\n"
            "      --split valid=en_ewt-ud-dev.conllu --split test=en_ewt-ud-test.conllu --out-dir data-ud\n"
        ),
    )
    ap.add_argument("--format", required=True, choices=FORMATS,
                    help="twitter: word<TAB>tag lines; conll2003: 'word POS chunk NER' (label = "
                         "last column, -DOCSTART- skipped); conllu: 10-column CoNLL-U "
                         "(comments, multi-word ranges 3-4 and empty nodes 8.1 skipped)")
    ap.add_argument("--field", default=None, metavar="COL[+COL...]",
                    help="conllu only: label column(s) by name (FORM LEMMA UPOS XPOS FEATS HEAD "
                         "DEPREL DEPS MISC); several names joined with '+' give a label made of "
                         "the values joined with '+', e.g. XPOS+DEPREL -> NN+nsubj "
                         f"(default {DEFAULT_CONLLU_FIELD})")
    ap.add_argument("--bioes", action="store_true",
                    help="convert IOB1/IOB2 labels to BIOES (type-aware)")
    ap.add_argument("--top-k-labels", type=int, default=None, metavar="K",
                    help=f"keep the K labels most frequent in the train split; map every other "
                         f"label in every split to '{RARE_LABEL}' (the '{RARE_LABEL}' rate per split is printed)")
    ap.add_argument("--lowercase", action="store_true", help="lower-case words (not labels)")
    ap.add_argument("--escape-whitespace", action="store_true",
                    help="replace whitespace characters inside a word (e.g. U+00A0, which fairseq "
                         "would split on) by <U+XXXX> instead of failing")
    ap.add_argument("--split", action="append", required=True, type=_parse_split,
                    metavar="NAME=FILE[,FILE...]",
                    help="a split and its input file(s), concatenated in order; repeat for each "
                         "split (train is required), e.g. --split train=a,b --split valid=c")
    ap.add_argument("--out-dir", required=True, help="output directory (created if missing)")
    ap.add_argument("--force", action="store_true",
                    help="replace the outputs of an earlier run in --out-dir (its other "
                         "splits are removed)")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    splits: Dict[str, List[str]] = {}
    for name, files in args.split:
        if name in splits:
            ap.error(f"split {name!r} given twice; list its files once: --split {name}=FILE1,FILE2")
        splits[name] = files
    if args.field is not None and args.format != "conllu":
        ap.error("--field only applies to --format conllu")
    try:
        convert(splits, args.format, args.out_dir, field=args.field, bioes=args.bioes,
                top_k=args.top_k_labels, lowercase=args.lowercase,
                escape_ws=args.escape_whitespace, force=args.force)
    except (ValueError, OSError) as e:  # ConllFormatError is a ValueError
        print(f"conll_to_fairseq.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
