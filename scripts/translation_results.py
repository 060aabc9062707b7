#!/usr/bin/env python
"""Rows of the ENGINE translation pipeline (``examples/engine_pipeline.sh``): one per
``fairseq-generate`` run, queued until the teacher energies of the queued outputs are known.

    python scripts/translation_results.py queue QUEUE.tsv --log GEN_OUT --speed-log GEN_OUT.err \\
        --table main --system "ENGINE cmlm_infnet" --iterations 1 --length-beam 3 \\
        --command "fairseq-generate ..."

reads the BLEU of the score line (``--scoring sacrebleu``) in ``--log``, the sentences/s
of fairseq's ``Translated N sentences`` line in ``--speed-log`` and the output statistics of
``scripts/translation_outputs.py`` (``--iterations AR``: an autoregressive output), prints
BLEU and speed, and appends the row (``QUEUE_COLUMNS``) to the queue.

    python scripts/translation_results.py merge QUEUE.tsv RESULTS.tsv [--energies ENERGIES.tsv]

appends every queued row to RESULTS (header first if it is new) with the mean energies of
its output under each teacher, read from ``scripts/teacher_energy.py``'s output (``file
sentences mean...``); without ``--energies``, or for a teacher it lacks, the energy is ``-``.
A RESULTS file written before a column existed gets the column, ``-`` in its old rows.

    python scripts/translation_results.py outputs QUEUE.tsv

prints the output file of every queued row, one per line (for ``scripts/teacher_energy.py``).

    python scripts/translation_results.py best VALUE=GEN_OUT [VALUE=GEN_OUT ...]

prints the VALUE whose output has the highest BLEU (the first of equals): how the recipes
choose a step size on dev.
"""

import argparse
import csv
import os
import sys
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine_plugin.report import parse_score_line  # noqa: E402
from scripts.bench_nat_speed import SPEED  # noqa: E402
from scripts.script_errors import exit_status  # noqa: E402
from scripts.translation_outputs import STATISTICS, output_statistics  # noqa: E402
from scripts.translation_tables import COLUMNS  # noqa: E402

QUEUE_COLUMNS = ["table", "system", "iterations", "length_beam", "bleu", "sentences_per_s",
                 *STATISTICS, "output", "command"]
MEASURED = ["bleu", "sentences_per_s", *STATISTICS]  # queued values copied into RESULTS
TEACHERS = 2  # energy (transformer teacher), energy_lstm (LSTM teacher)

SCORE_LINE_PREFIX = "Generate "  # fairseq-generate's "Generate SUBSET with beam=K: ..."


def last_bleu(path: str) -> Optional[str]:
    """The metric of the last score line in ``path`` (fairseq-generate's stdout), or None."""
    with open(path, encoding="utf-8", errors="replace") as f:
        found = [parse_score_line(line).metric for line in f
                 if line.startswith(SCORE_LINE_PREFIX)]
    return found[-1] if found else None


def last_speed(path: str) -> Optional[str]:
    """The sentences/s of the last ``Translated N sentences`` line in ``path``, or None."""
    with open(path, encoding="utf-8", errors="replace") as f:
        found = [m.group(4) for m in map(SPEED.search, f) if m]
    return found[-1] if found else None


def queue_row(queue: str, row: Dict[str, str]) -> None:
    """Appends ``row`` (keys ``QUEUE_COLUMNS``) to the tab-separated ``queue``."""
    for key, value in row.items():
        if "\t" in value or "\n" in value:
            raise ValueError(f"{key} holds a tab or a newline: {value!r}")
    with open(queue, "a", encoding="utf-8") as f:
        f.write("\t".join(row[key] for key in QUEUE_COLUMNS) + "\n")


def read_energies(path: Optional[str]) -> Dict[str, List[str]]:
    """{output file: [mean energy per teacher]} from teacher_energy.py's output."""
    if path is None:
        return {}
    energies = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            output, _sentences, *means = line.rstrip("\n").split("\t")
            energies[output] = means
    return energies


def queued_rows(queue: str) -> List[Dict[str, str]]:
    """The rows of ``queue``, as ``{column: value}`` of ``QUEUE_COLUMNS``."""
    rows = []
    with open(queue, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(QUEUE_COLUMNS):
                raise ValueError(f"{queue}:{number}: {len(fields)} fields, not "
                                 f"{len(QUEUE_COLUMNS)} ({' '.join(QUEUE_COLUMNS)})")
            rows.append(dict(zip(QUEUE_COLUMNS, fields)))
    return rows


def merged_rows(queue: str, energies: Dict[str, List[str]]) -> List[Dict[str, str]]:
    """The queued rows as results rows: BLEU (``-`` if none) and one energy per teacher."""
    rows = []
    for queued in queued_rows(queue):
        if energies and queued["output"] not in energies:
            raise ValueError(f"no energy of {queued['output']} (queued in {queue})")
        means = energies.get(queued["output"], [])
        means = means + ["-"] * (TEACHERS - len(means))
        rows.append({**{k: queued[k] for k in QUEUE_COLUMNS[:4]},
                     **{k: queued[k] or "-" for k in MEASURED},
                     "energy": means[0], "energy_lstm": means[1],
                     "command": queued["command"]})
    return rows


def _writer(f) -> csv.DictWriter:
    return csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n", restval="-",
                          quoting=csv.QUOTE_NONE, quotechar=None, escapechar=None)


def _add_new_columns(results: str) -> None:
    """Rewrites a RESULTS file whose header lacks some of ``COLUMNS`` with all of them
    (``-`` for the missing values), through a temporary file; others stay untouched."""
    with open(results, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames == COLUMNS:
            return
        unknown = set(reader.fieldnames or []) - set(COLUMNS)
        if unknown:
            raise ValueError(f"{results}: unknown columns {sorted(unknown)} (not a results "
                             f"table of this script?)")
        old = list(reader)
    with open(results + ".tmp", "w", encoding="utf-8", newline="") as f:
        writer = _writer(f)
        writer.writeheader()
        writer.writerows(old)
    os.replace(results + ".tmp", results)


def append_results(results: str, rows: List[Dict[str, str]]) -> None:
    new = not os.path.exists(results) or os.path.getsize(results) == 0
    if not new:
        _add_new_columns(results)
    with open(results, "a", encoding="utf-8", newline="") as f:
        writer = _writer(f)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def best_value(choices: List[str]) -> str:
    """The VALUE of the ``VALUE=GEN_OUT`` choice whose output has the highest BLEU."""
    scored = []
    for choice in choices:
        value, equals, path = choice.partition("=")
        if not equals or not value:
            raise ValueError(f"{choice!r}: expected VALUE=GEN_OUT")
        bleu = last_bleu(path)
        if bleu is None:
            raise ValueError(f"{path}: no BLEU score line (did its fairseq-generate fail?)")
        scored.append((float(bleu), -len(scored), value))
    return max(scored)[2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    queue = sub.add_parser("queue", help="queue the row of one fairseq-generate output")
    queue.add_argument("queue")
    queue.add_argument("--log", required=True, help="stdout of fairseq-generate")
    queue.add_argument("--speed-log", required=True, help="stderr of fairseq-generate")
    for key in ("table", "system", "iterations", "length-beam", "command"):
        queue.add_argument(f"--{key}", required=True)
    merge = sub.add_parser("merge", help="append the queued rows, with energies, to RESULTS")
    merge.add_argument("queue")
    merge.add_argument("results")
    merge.add_argument("--energies", help="output of scripts/teacher_energy.py")
    outputs = sub.add_parser("outputs", help="the output files of the queued rows")
    outputs.add_argument("queue")
    best = sub.add_parser("best", help="the value whose output has the highest BLEU")
    best.add_argument("choices", nargs="+", metavar="VALUE=GEN_OUT")
    args = parser.parse_args(argv)
    return exit_status("translation_results.py", lambda: record(args))


def record(args) -> None:
    """``queue``: one generate output's row into the queue; ``merge``: the queued rows,
    with their teacher energies, appended to the results table; ``best``: the choice."""
    if args.action == "queue":
        bleu = last_bleu(args.log) or ""
        speed = last_speed(args.speed_log)
        print(f"   {args.system:<28} iterations={args.iterations:<3} "
              f"length_beam={args.length_beam:<7} BLEU={bleu}  ({speed or '?'} sentences/s)")
        stats = output_statistics(args.log, autoregressive=args.iterations == "AR")
        queue_row(args.queue, {"table": args.table, "system": args.system,
                               "iterations": args.iterations, "length_beam": args.length_beam,
                               "bleu": bleu, "sentences_per_s": speed or "", **stats,
                               "output": args.log, "command": args.command})
    elif args.action == "best":
        print(best_value(args.choices))
    elif args.action == "outputs":
        print("\n".join(row["output"] for row in queued_rows(args.queue)))
    else:
        rows = merged_rows(args.queue, read_energies(args.energies))
        append_results(args.results, rows)
        print(f"   {len(rows)} rows -> {args.results}")


if __name__ == "__main__":
    sys.exit(main())
