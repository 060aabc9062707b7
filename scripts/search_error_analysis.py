"""Search error against language-model perplexity (Tu & Gimpel 2019, §6.2).

    python scripts/search_error_analysis.py --viterbi generate.viterbi.txt \\
        --method infnet=generate.infnet.txt --method gd=generate.gd.txt \\
        --word-ppl word_ppl.tsv --label-ppl label_ppl.tsv [--out-md OUT.md] [--out-tsv OUT.tsv]

Inputs are the stdout of ``fairseq-generate --task sequence_labeling`` on one split, one run per
inference method, all with the same CRF energy, and the per-sentence perplexity tables written
by ``scripts/eval_lm_sentence_ppl.py`` (an LM of word sequences scored on the split's words,
an LM of label sequences scored on its gold labels).

A ``H-i<TAB>score<TAB>labels`` line carries ``score = -E(x_i, y) / ln 2``, so
``E = -score * ln 2`` and the search error of a method on sentence i is

    E(x_i, y_method) - E(x_i, y_viterbi)   (>= 0: Viterbi finds the minimum).

The script prints, for every method and every LM, Spearman's rho between the per-sentence
perplexity and the search error (``scipy.stats.spearmanr``; ties get average ranks, so the many
sentences without search error form one tie), with n and the two-sided p-value, as a Markdown
table; a ``length`` row (words per sentence) is added as a reference, because perplexity and
search error may both follow sentence length.

Checks, each an error naming the file: every file covers the same sentence ids (one hypothesis
per sentence) with the same words and gold labels; the ``--viterbi`` file was decoded with
``--inference viterbi``; no search error is below ``-(1e-3 * |E_viterbi| + 1e-4)`` (a negative
search error means a different energy or a bug); a method output identical to Viterbi's has
the same energy (up to that tolerance); the perplexity tables have these ids, with the words
(word LM) or gold labels (label LM) of each sentence, ``<unk>`` matching any token. A labelling
identical to Viterbi's has search error exactly zero; a small negative one (within the
tolerance: a tie with Viterbi, float noise) counts as zero. When a generate file's score line
reports ``search_error=``, the mean computed here is compared with it (a warning if they differ).
"""

import argparse
import csv
import math
import os
import re
import sys

from scipy.stats import spearmanr

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine_plugin.report import parse_score_line  # noqa: E402

H_LINE = re.compile(r"^H-(\d+)\t(\S+)\t(.*)$")
ST_LINE = re.compile(r"^([ST])-(\d+)\t(.*)$")
LN2 = math.log(2)
UNK = "<unk>"


class AnalysisError(ValueError):
    pass


def read_generate(path):
    """{id: (energy, labels, words, gold)} and {"inference", "search_error"} of the score line
    (None where absent)."""
    hyps, src, tgt, summary = {}, {}, {}, {"inference": None, "search_error": None}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            m = H_LINE.match(line)
            if m:
                sid = int(m.group(1))
                if sid in hyps:
                    raise AnalysisError(f"{path}:{lineno}: a second hypothesis for sentence "
                                        f"{sid} (use --nbest 1)")
                try:
                    score = float(m.group(2))
                except ValueError:
                    raise AnalysisError(f"{path}:{lineno}: score {m.group(2)!r} is not a "
                                        "number") from None
                if not math.isfinite(score):
                    raise AnalysisError(f"{path}:{lineno}: score of sentence {sid} is {score}")
                hyps[sid] = (-score * LN2, m.group(3).split())
                continue
            m = ST_LINE.match(line)
            if m:
                (src if m.group(1) == "S" else tgt)[int(m.group(2))] = m.group(3).split()
                continue
            if line.startswith("Generate "):
                summary = _score_line_summary(path, lineno, line)
    if not hyps:
        raise AnalysisError(f"{path}: no H- lines (not fairseq-generate output?)")
    return {i: (e, y, src.get(i), tgt.get(i)) for i, (e, y) in hyps.items()}, summary


def _score_line_summary(path, lineno, line):
    """``{"inference", "search_error"}`` of a score line (None where absent)."""
    try:
        fields = parse_score_line(line).fields
        reported = fields.get("search_error")
        return {"inference": fields.get("inference"),
                "search_error": None if reported is None else float(reported)}
    except ValueError as error:
        raise AnalysisError(f"{path}:{lineno}: {error}") from None


def _id_mismatch(path, ids, ref_path, ref_ids):
    missing, extra = sorted(ref_ids - ids), sorted(ids - ref_ids)
    return AnalysisError(
        f"{path}: sentence ids differ from {ref_path}: {len(missing)} missing "
        f"{missing[:10]}, {len(extra)} not in {ref_path} {extra[:10]} (same split? "
        "--gen-subset and data must match)")


def _same_tokens(lm_tokens, tokens):
    return len(lm_tokens) == len(tokens) and all(
        a == b or a == UNK or b == UNK for a, b in zip(lm_tokens, tokens))


def tolerance(energy):
    return 1e-3 * abs(energy) + 1e-4


def search_errors(viterbi, methods):
    """Per-method {id: search error} (see the module doc for the checks)."""
    vit_path, vit = viterbi
    out = {}
    for name, (path, hyps) in methods.items():
        if set(hyps) != set(vit):
            raise _id_mismatch(path, set(hyps), vit_path, set(vit))
        errors = {}
        for i in sorted(vit):
            e_vit, y_vit, words, gold = vit[i]
            e, y, w, g = hyps[i]
            if (w is not None and words is not None and w != words) or \
                    (g is not None and gold is not None and g != gold):
                raise AnalysisError(f"{path}: sentence {i} has other words or gold labels than "
                                    f"in {vit_path} (same split and data?)")
            if len(y) != len(y_vit):
                raise AnalysisError(f"{path}: sentence {i} has {len(y)} labels but "
                                    f"{len(y_vit)} in {vit_path}")
            diff = e - e_vit
            tol = tolerance(e_vit)
            if y == y_vit:
                if abs(diff) > tol:
                    raise AnalysisError(
                        f"{path}: sentence {i} has the Viterbi labels of {vit_path} but energy "
                        f"{e:.6f}, not {e_vit:.6f}: not the same CRF energy?")
                diff = 0.0
            elif diff < -tol:
                raise AnalysisError(
                    f"{path}: negative search error {diff:.6f} on sentence {i} (energy "
                    f"{e:.6f} below the Viterbi energy {e_vit:.6f} of {vit_path}): not the "
                    "same CRF energy, or Viterbi is wrong")
            errors[i] = max(diff, 0.0)
        out[name] = errors
    return out


def read_ppl(path):
    """{id: (ppl, tokens without </s>)} from a scripts/eval_lm_sentence_ppl.py table."""
    rows = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not reader.fieldnames or not {"id", "ppl"} <= set(reader.fieldnames):
            raise AnalysisError(f"{path}: needs a header with columns id and ppl "
                                "(scripts/eval_lm_sentence_ppl.py writes one)")
        for row in reader:
            try:
                sid, ppl = int(row["id"]), float(row["ppl"])
            except (TypeError, ValueError):
                raise AnalysisError(f"{path}:{reader.line_num}: bad id or ppl {row}") from None
            if sid in rows:
                raise AnalysisError(f"{path}:{reader.line_num}: sentence {sid} twice")
            if not math.isfinite(ppl) or ppl <= 0:
                raise AnalysisError(f"{path}:{reader.line_num}: perplexity {ppl}")
            text = row.get("text")
            rows[sid] = (ppl, text.split() if text is not None else None)
    return rows


def check_ppl(path, ppl, vit_path, vit, field):
    """The table covers the Viterbi file's ids; its text is their words (field 2) or gold (3)."""
    if set(ppl) != set(vit):
        raise _id_mismatch(path, set(ppl), vit_path, set(vit))
    what = "words" if field == 2 else "gold labels"
    for i, (_, tokens) in ppl.items():
        ref = vit[i][field]
        if tokens is not None and ref is not None and not _same_tokens(tokens, ref):
            raise AnalysisError(
                f"{path}: sentence {i} is {' '.join(tokens)!r} but its {what} in {vit_path} are "
                f"{' '.join(ref)!r}: the LM scored another split or order")


def correlate(x, y):
    """(rho, p) of Spearman's rank correlation; nan when either side is constant."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan"), float("nan")
    res = spearmanr(x, y)
    return float(res[0]), float(res[1])


def _fmt(v, spec):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def analyse(viterbi_path, method_paths, word_ppl_path=None, label_ppl_path=None):
    """Returns (rows, per-sentence table) for ``render``; raises AnalysisError on bad inputs."""
    vit, summary = read_generate(viterbi_path)
    if summary["inference"] not in (None, "viterbi"):
        raise AnalysisError(f"{viterbi_path}: decoded with inference={summary['inference']}, "
                            "not viterbi")
    methods, reported = {}, {}
    for name, path in method_paths:
        if name in methods:
            raise AnalysisError(f"method name {name!r} given twice")
        hyps, summary = read_generate(path)
        methods[name], reported[name] = (path, hyps), summary["search_error"]
    errors = search_errors((viterbi_path, vit), methods)
    for name, errs in errors.items():
        mean = sum(errs.values()) / len(errs)
        if reported[name] is not None and abs(mean - reported[name]) > 1e-3 + 1e-3 * mean:
            print(f"warning: {methods[name][0]}: mean search error {mean:.4f} against "
                  f"{viterbi_path}, but its score line says {reported[name]:.4f}",
                  file=sys.stderr)
    ids = sorted(vit)
    predictors = [("length", "words per sentence", {i: float(len(vit[i][1])) for i in ids})]
    columns = {}
    for label, path, field in (("word LM", word_ppl_path, 2), ("label LM", label_ppl_path, 3)):
        if path is None:
            continue
        ppl = read_ppl(path)
        check_ppl(path, ppl, viterbi_path, vit, field)
        values = {i: ppl[i][0] for i in ids}
        predictors.insert(len(predictors) - 1, (label, path, values))
        columns[label] = values
    rows = []
    for name, errs in errors.items():
        se = [errs[i] for i in ids]
        for label, _, values in predictors:
            rho, p = correlate([values[i] for i in ids], se)
            rows.append({"method": name, "predictor": label, "n": len(ids), "rho": rho,
                         "p": p, "mean_se": sum(se) / len(se),
                         "nonzero": sum(s > 0 for s in se) / len(se)})
    table = [{"id": i, "length": len(vit[i][1]), "energy_viterbi": vit[i][0],
              **{f"ppl_{k.split()[0]}": v[i] for k, v in columns.items()},
              **{f"search_error_{n}": errs[i] for n, errs in errors.items()}} for i in ids]
    return rows, table


def render(rows):
    lines = ["| method | perplexity of | n | Spearman's ρ | p-value | mean search error "
             "| sentences with search error > 0 |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['predictor']} | {r['n']} | {_fmt(r['rho'], '.3f')} "
                     f"| {_fmt(r['p'], '.3g')} | {r['mean_se']:.4f} | {100 * r['nonzero']:.1f}% |")
    lines += ["", "ρ between each sentence's perplexity under the LM and the method's search "
              "error E(x, ŷ) − E(x, y_viterbi) (scipy.stats.spearmanr, two-sided p). `length` "
              "(words per sentence) is a reference predictor, not a perplexity. – : undefined "
              "(no variation in search error)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--viterbi", required=True, help="fairseq-generate output, --inference viterbi")
    p.add_argument("--method", action="append", default=[], metavar="NAME=GEN.txt",
                   help="fairseq-generate output of another method on the same split (repeat)")
    p.add_argument("--word-ppl", help="per-sentence word-LM perplexities (eval_lm_sentence_ppl.py)")
    p.add_argument("--label-ppl", help="per-sentence gold-label-LM perplexities")
    p.add_argument("--out-md", help="also write the Markdown table here")
    p.add_argument("--out-tsv", help="per-sentence perplexities and search errors")
    args = p.parse_args(argv)
    if not args.method:
        p.error("give at least one --method NAME=GEN.txt")
    pairs = []
    for spec in args.method:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--method {spec!r}: expected NAME=GEN.txt")
        pairs.append((name, path))
    try:
        rows, table = analyse(args.viterbi, pairs, args.word_ppl, args.label_ppl)
    except (AnalysisError, OSError) as e:
        sys.exit(f"error: {e}")
    md = render(rows)
    sys.stdout.write(md)
    if args.out_md:
        with open(args.out_md, "w", encoding="utf-8") as f:
            f.write(md)
    if args.out_tsv:
        with open(args.out_tsv, "w", encoding="utf-8") as f:
            keys = list(table[0])
            f.write("\t".join(keys) + "\n")
            for row in table:
                f.write("\t".join(f"{row[k]:.6g}" if isinstance(row[k], float) else str(row[k])
                                  for k in keys) + "\n")


if __name__ == "__main__":
    main()
