#!/usr/bin/env python
"""Markdown tables from the results.tsv of the ENGINE translation recipes.

    python scripts/translation_tables.py WORK/results.tsv [--timings WORK/timings.tsv]

results.tsv has a header and the columns ``table system iterations length_beam bleu energy
energy_lstm command`` (written by ``scripts/translation_results.py`` for
``examples/engine_pipeline.sh``). Rows of table
``main`` become the main table (one line per system and decoding setting, in the order
they were first written); rows of table ``operators`` (system ``o1,o2``) become ENGINE's
Table 2 layout: O1 down, O2 across, each cell ``energy (BLEU)``; an ``operators`` row of
system ``start`` (the model every cell is fine-tuned from) is printed below it. When a row was written
several times (a stage rerun), the last one counts. ``--timings`` adds the stage times.
"""

import argparse
import csv
import sys
from typing import Dict, List, Tuple

OPERATORS = ["sx", "stl", "sg", "st", "gx"]
COLUMNS = ["table", "system", "iterations", "length_beam", "bleu", "energy", "energy_lstm",
           "command"]


def read_results(path: str) -> Dict[Tuple[str, str, str, str], Dict[str, str]]:
    """{(table, system, iterations, length_beam): row}, the last row of each key, in the
    order the keys first appear."""
    rows: Dict[Tuple[str, str, str, str], Dict[str, str]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            key = (row["table"], row["system"], row["iterations"], row["length_beam"])
            rows[key] = row
    return rows


def main_table(rows) -> List[str]:
    lines = ["| system | iterations | length beam | BLEU | energy (transformer) | energy (LSTM) |",
             "|---|---:|---:|---:|---:|---:|"]
    for (table, system, iters, lbeam), row in rows.items():
        if table == "main":
            lines.append(f"| {system} | {iters} | {lbeam} | {row['bleu']} | {row['energy']} "
                         f"| {row['energy_lstm']} |")
    return lines


def operator_table(rows) -> List[str]:
    cells = {tuple(system.split(",")): row for (table, system, _, _), row in rows.items()
             if table == "operators"}
    start = cells.pop(("start",), None)
    if not cells:
        return []
    lines = ["| O1 \\ O2 | " + " | ".join(o.upper() for o in OPERATORS) + " |",
             "|---|" + "---:|" * len(OPERATORS)]
    for o1 in OPERATORS:
        entries = []
        for o2 in OPERATORS:
            row = cells.get((o1, o2))
            entries.append(f"{row['energy']} ({row['bleu']})" if row else "—")
        lines.append(f"| {o1.upper()} | " + " | ".join(entries) + " |")
    if start:
        lines += ["", f"Every cell starts from the CMLM baseline: {start['energy']} "
                      f"({start['bleu']}) before any energy update."]
    return lines


def timings_table(path: str) -> List[str]:
    """Stage wall times, the last run of each stage."""
    with open(path, encoding="utf-8") as f:
        seconds = {row["stage"]: float(row["seconds"]) for row in csv.DictReader(f, delimiter="\t")}
    lines = ["| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {value:.0f} |" for stage, value in seconds.items()]
    lines.append(f"| **total** | **{sum(seconds.values()):.0f}** |")
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results")
    parser.add_argument("--timings", help="timings.tsv of the same run")
    args = parser.parse_args(argv)
    rows = read_results(args.results)
    out = ["### Test BLEU and mean teacher energy (nats per sentence)", "", *main_table(rows)]
    operators = operator_table(rows)
    if operators:
        out += ["", "### Operators: energy (BLEU), validation sentences, oracle lengths, "
                "1 iteration", "", *operators]
    if args.timings:
        out += ["", "### Stage wall times", "", *timings_table(args.timings)]
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
