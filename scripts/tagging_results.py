"""Rows of a tagging benchmark: one per ``fairseq-generate`` run, kept in a TSV file.

``examples/tagging_benchmark.sh`` calls this after every decode (``decode_row`` of
``examples/common.sh`` adds ``--log`` and ``--command``):

    python scripts/tagging_results.py append RESULTS.tsv --log GENERATE_STDOUT \\
        --data twitter_pos --split test --method gd --arch - --n 20 --lr 10 \\
        --batch-size 10 --command "fairseq-generate ..." [--train-command "fairseq-train ..."]

parses the last line of the generate output (the score line, e.g. ``Accuracy = 90.12
(n_tokens=7707) | inference=gd energy_relaxed=... energy=... search_error=...
zero_search_error=...% sentences=547 sentences_per_s=...``, or ``F1 = ... (precision=...``)
and appends one row (writing the header first if the file is new), and prints it. It exits with status 1
and shows the end of the log when the last line is not a score line.

    python scripts/tagging_results.py best RESULTS.tsv --commands TUNING_COMMANDS.txt

prints the ``lr`` of the row with the highest metric (ties: lowest energy) among the rows
whose command is one of the lines of ``--commands`` (and that match ``--data``, ``--split``,
``--method``, ``--arch``, ``--n`` if given): how the benchmark picks a fixed step size on the
development split from exactly the runs of its grid.

``scripts/tagging_tables.py`` turns the rows into tables and a plot.
"""

import argparse
import csv
import os
import sys
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine_plugin.report import parse_score_line as parse_generate_score_line  # noqa: E402

COLUMNS = [
    "data", "split", "method", "arch", "n", "lr", "metric_name", "metric", "energy_relaxed",
    "energy", "search_error", "zero_search_error", "sentences", "sentences_per_s",
    "batch_size", "command", "train_command", "score_line",
]

METRIC_NAMES = {"Accuracy": "acc", "F1": "F1"}  # tag_accuracy's and span_f1's


def parse_score_line(line: str) -> Dict[str, str]:
    """The fields of a tagging score line (read by
    :func:`engine_plugin.report.parse_score_line`): ``metric_name`` (``acc`` or ``F1``),
    ``metric``, ``energy_relaxed``, ``energy``, ``search_error``, ``zero_search_error``
    (percent, no ``%``), ``sentences``, ``sentences_per_s``.

    Raises:
        ValueError: the line has no ``Accuracy =``/``F1 =`` or no energy/speed summary.
    """
    try:
        metric_name, metric, fields = parse_generate_score_line(line)
    except ValueError:
        metric_name, fields = None, {}
    if metric_name not in METRIC_NAMES or "sentences_per_s" not in fields or "energy" not in fields:
        raise ValueError(f"not a tagging score line: {line.strip()!r}")
    return {
        "metric_name": METRIC_NAMES[metric_name],
        "metric": metric,
        "energy_relaxed": fields.get("energy_relaxed", ""),
        "energy": fields["energy"],
        "search_error": fields.get("search_error", ""),
        "zero_search_error": fields.get("zero_search_error", ""),
        "sentences": fields.get("sentences", ""),
        "sentences_per_s": fields["sentences_per_s"],
    }


def last_line(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def append_row(results: str, row: Dict[str, str]) -> None:
    """Appends ``row`` (keys from ``COLUMNS``) to the TSV ``results``, header first if new."""
    new = not os.path.exists(results) or os.path.getsize(results) == 0
    with open(results, "a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n",
                                quoting=csv.QUOTE_MINIMAL)
        if new:
            writer.writeheader()
        writer.writerow({key: " ".join(str(row.get(key, "")).split()) for key in COLUMNS})


def read_rows(paths: List[str]) -> List[Dict[str, str]]:
    """All rows of the given TSV files, in order."""
    rows = []
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            rows.extend(csv.DictReader(f, delimiter="\t"))
    return rows


def best_lr(rows: List[Dict[str, str]], **match: str) -> str:
    """The ``lr`` of the row matching every ``key=value`` with the highest metric, ties
    broken by lower energy; raises ``LookupError`` when no row matches."""
    candidates = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    if not candidates:
        raise LookupError(f"no result row with {match}")
    return max(candidates, key=lambda r: (float(r["metric"]), -float(r["energy"])))["lr"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command_name", required=True)
    append = sub.add_parser("append", help="append the score line of a generate log")
    append.add_argument("results")
    append.add_argument("--log", required=True, help="stdout of fairseq-generate")
    for key in ("data", "split", "method", "arch", "n", "lr", "batch-size", "command",
                "train-command"):
        append.add_argument(f"--{key}", default="")
    best = sub.add_parser("best", help="print the lr of the best matching row")
    best.add_argument("results")
    for key in ("data", "split", "method", "arch", "n"):
        best.add_argument(f"--{key}")
    best.add_argument("--commands", help="file of commands, one a line: only their rows")
    args = parser.parse_args(argv)

    if args.command_name == "append":
        line = last_line(args.log)
        try:
            parsed = parse_score_line(line)
        except ValueError as err:
            with open(args.log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-3000:]
            sys.exit(f"{err}\n--- end of {args.log} ---\n{tail}")
        row = {k: getattr(args, k) for k in
               ("data", "split", "method", "arch", "n", "lr", "batch_size", "command",
                "train_command")}
        row.update(parsed, score_line=line)
        append_row(args.results, row)
        print(f"   {args.split} {args.method} {args.arch} N={args.n} η={args.lr}: "
              f"{line.split(': ', 1)[-1]}")
        return
    match = {k: getattr(args, k) for k in ("data", "split", "method", "arch", "n")
             if getattr(args, k) is not None}
    rows = read_rows([args.results])
    if args.commands:
        with open(args.commands, encoding="utf-8") as f:
            wanted = {" ".join(line.split()) for line in f if line.strip()}
        rows = [r for r in rows if r["command"] in wanted]
    try:
        print(best_lr(rows, **match))
    except LookupError as err:
        sys.exit(str(err))


if __name__ == "__main__":
    main()
