"""BLSTM-CRF+ training throughput (sentences/s), before and after, on the real corpora.

Exports two committed trees with ``git archive`` (``--before``, default ``main``, and
``--after``, default ``HEAD``), prepares each corpus as its recipe does (Twitter POS,
CoNLL-2003 BIOES, UD-EWT XPOS+DEPREL top 400 labels), then trains the recipe's
BLSTM-CRF+ energy for ``--updates`` updates with stock ``fairseq-train`` from each tree,
alternating which goes first over ``--rounds`` rounds, one thread each. Throughput is
fairseq's ``ups * bsz`` (updates/s times sentences per batch) per log interval, the first
interval (warm-up) left out; reported are the medians and ``after / before``.

    python -m scripts.bench_crf_training --data-root DATA --work WORK --json out.json

DATA holds twitter_pos/, conll2003_ner/ and ud_english_ewt/ (see their PROVENANCE.md).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# corpus -> (scripts/conll_to_fairseq.py arguments given the data dir, fairseq-train args)
CORPORA = {
    "twitter_pos": (
        lambda d: ["--format", "twitter", "--escape-whitespace",
                   "--split", f"train={d}/oct27.train,{d}/oct27.dev",
                   "--split", f"valid={d}/oct27.test", "--split", f"test={d}/daily547.conll"],
        ["--hidden-size", "200", "--embed-dim", "50", "--char-filters", "200", "--char-dim", "50",
         "--word-dropout", "0.4", "--lowercase-embeddings"],
    ),
    "conll2003_ner": (
        lambda d: ["--format", "conll2003", "--bioes", "--split", f"train={d}/eng.train",
                   "--split", f"valid={d}/eng.testa", "--split", f"test={d}/eng.testb"],
        ["--hidden-size", "200", "--word-dropout", "0.05"],
    ),
    "ud_ewt_400": (
        lambda d: ["--format", "conllu", "--field", "XPOS+DEPREL", "--top-k-labels", "400",
                   "--escape-whitespace",
                   "--split", f"train={d}/en_ewt-ud-train.conllu",
                   "--split", f"valid={d}/en_ewt-ud-dev.conllu",
                   "--split", f"test={d}/en_ewt-ud-test.conllu"],
        ["--hidden-size", "400", "--word-dropout", "0.05"],
    ),
}
DATA_DIRS = {"twitter_pos": "twitter_pos", "conll2003_ner": "conll2003_ner",
             "ud_ewt_400": "ud_english_ewt"}


def export_tree(rev: str, dest: str) -> str:
    """``git archive REV`` unpacked into DEST (once); returns DEST."""
    if not os.path.isdir(dest):
        os.makedirs(dest)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
    return dest


def environment(tree: str) -> dict:
    env = dict(os.environ, PYTHONPATH=tree, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def prepare(corpus: str, data_root: str, work: str, tree: str) -> str:
    """The corpus converted and binarised as its recipe does; returns the BIN dir."""
    raw, bin_dir = os.path.join(work, corpus, "raw"), os.path.join(work, corpus, "bin")
    if os.path.exists(os.path.join(bin_dir, "dict.tags.txt")):
        return bin_dir
    convert, _ = CORPORA[corpus]
    data = os.path.abspath(os.path.join(data_root, DATA_DIRS[corpus]))
    subprocess.run([sys.executable, "scripts/conll_to_fairseq.py", *convert(data),
                    "--out-dir", raw], cwd=tree, env=environment(tree), check=True)
    subprocess.run(["bash", "-c", 'source examples/common.sh && binarize "$0" "$1"', raw,
                    bin_dir], cwd=tree, env=environment(tree), check=True)
    return bin_dir


def train(bin_dir: str, tree: str, corpus: str, updates: int, log: str):
    """Runs fairseq-train from ``tree``; returns sentences/s of each log interval."""
    cmd = [sys.executable, "-m", "fairseq_cli.train", bin_dir, "--user-dir",
           os.path.join(tree, "engine_plugin"), "--task", "sequence_labeling",
           "--arch", "blstm_crf_plus", "--criterion", "crf_nll", "--optimizer", "adam",
           "--clip-norm", "5", "--lr", "0.002", "--batch-size", "10", "--seed", "1",
           "--max-update", str(updates), "--disable-validation", "--no-save", "--cpu",
           "--log-format", "simple", "--log-interval", "25", *CORPORA[corpus][1]]
    with open(log, "w") as out:
        subprocess.run(cmd, cwd=tree, env=environment(tree), stdout=out,
                       stderr=subprocess.STDOUT, check=True)
    rates = []
    with open(log) as f:
        for line in f:
            if "train_inner" in line:
                ups = float(re.search(r"ups=([\d.]+)", line).group(1))
                bsz = float(re.search(r"bsz=([\d.]+)", line).group(1))
                rates.append(ups * bsz)
    if len(rates) < 2:
        raise RuntimeError(f"{log}: fewer than two log intervals; raise --updates")
    return rates[1:]


def bench_corpus(corpus, args, trees):
    bin_dir = prepare(corpus, args.data_root, args.work, trees["after"])
    rates = {name: [] for name in trees}
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(trees)[::-1]
        for name in order:
            log = os.path.join(args.work, corpus, f"train_{name}_{r}.log")
            rates[name] += train(bin_dir, trees[name], corpus, args.updates, log)
    row = {"corpus": corpus, "updates": args.updates, "rounds": args.rounds}
    for name, values in rates.items():
        row[f"{name}_sentences_per_s"] = statistics.median(values)
    row["speedup"] = row["after_sentences_per_s"] / row["before_sentences_per_s"]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--work", required=True, help="outside the repository")
    parser.add_argument("--before", default="main")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--corpora", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--updates", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args(argv)
    args.work = os.path.abspath(args.work)
    trees = {name: export_tree(rev, os.path.join(args.work, f"src_{name}"))
             for name, rev in (("before", args.before), ("after", args.after))}
    rows = []
    for corpus in args.corpora:
        rows.append(bench_corpus(corpus, args, trees))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
