#!/usr/bin/env python
"""Rows of the ENGINE translation pipeline (``examples/engine_pipeline.sh``): one per
``fairseq-generate`` run, queued until the teacher energies of the queued outputs are known.

    python scripts/translation_results.py queue QUEUE.tsv --log GEN_OUT --speed-log GEN_OUT.err \\
        --table main --system "ENGINE cmlm_infnet" --iterations 1 --length-beam 3 \\
        --command "fairseq-generate ..."

reads the BLEU of the score line (``--scoring sacrebleu``) in ``--log`` and the sentences/s
of fairseq's ``Translated N sentences`` line in ``--speed-log``, prints them, and appends
``table system iterations length_beam bleu output command`` to the queue.

    python scripts/translation_results.py merge QUEUE.tsv RESULTS.tsv [--energies ENERGIES.tsv]

appends every queued row to RESULTS (header first if it is new) with the mean energies of
its output under each teacher, read from ``scripts/teacher_energy.py``'s output (``file
sentences mean...``); without ``--energies``, or for a teacher it lacks, the energy is ``-``.
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
from scripts.translation_tables import COLUMNS  # noqa: E402

QUEUE_COLUMNS = ["table", "system", "iterations", "length_beam", "bleu", "output", "command"]
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


def merged_rows(queue: str, energies: Dict[str, List[str]]) -> List[Dict[str, str]]:
    """The queued rows as results rows: BLEU (``-`` if none) and one energy per teacher."""
    rows = []
    with open(queue, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            if len(fields) != len(QUEUE_COLUMNS):
                raise ValueError(f"{queue}:{number}: {len(fields)} fields, not "
                                 f"{len(QUEUE_COLUMNS)} ({' '.join(QUEUE_COLUMNS)})")
            queued = dict(zip(QUEUE_COLUMNS, fields))
            if energies and queued["output"] not in energies:
                raise ValueError(f"no energy of {queued['output']} (queued in {queue})")
            means = energies.get(queued["output"], [])
            means = means + ["-"] * (TEACHERS - len(means))
            rows.append({**{k: queued[k] for k in QUEUE_COLUMNS[:4]},
                         "bleu": queued["bleu"] or "-", "energy": means[0],
                         "energy_lstm": means[1], "command": queued["command"]})
    return rows


def append_results(results: str, rows: List[Dict[str, str]]) -> None:
    new = not os.path.exists(results) or os.path.getsize(results) == 0
    with open(results, "a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n",
                                quoting=csv.QUOTE_NONE, quotechar=None, escapechar=None)
        if new:
            writer.writeheader()
        writer.writerows(rows)


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
    args = parser.parse_args(argv)
    return exit_status("translation_results.py", lambda: record(args))


def record(args) -> None:
    """``queue``: one generate output's row into the queue; ``merge``: the queued rows,
    with their teacher energies, appended to the results table."""
    if args.action == "queue":
        bleu = last_bleu(args.log) or ""
        speed = last_speed(args.speed_log) or "?"
        print(f"   {args.system:<28} iterations={args.iterations:<3} "
              f"length_beam={args.length_beam:<7} BLEU={bleu}  ({speed} sentences/s)")
        queue_row(args.queue, {"table": args.table, "system": args.system,
                               "iterations": args.iterations, "length_beam": args.length_beam,
                               "bleu": bleu, "output": args.log, "command": args.command})
    else:
        rows = merged_rows(args.queue, read_energies(args.energies))
        append_results(args.results, rows)
        print(f"   {len(rows)} rows -> {args.results}")


if __name__ == "__main__":
    sys.exit(main())
