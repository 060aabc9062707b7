#!/usr/bin/env python
"""Markdown tables from the results.tsv of the ENGINE translation recipes.

    python scripts/translation_tables.py WORK/results.tsv [--timings WORK/timings.tsv] \
        [--out-png SOLVERS.png]

results.tsv has a header and the columns ``COLUMNS`` (written by
``scripts/translation_results.py`` for ``examples/engine_pipeline.sh``; tables written before
the speed and output statistics existed lack them, shown as ``-``). Rows of table
``main`` become the main table (one line per system and decoding setting, in the order
they were first written); rows of table ``operators`` (system ``o1,o2``) become ENGINE's
Table 2 layout: O1 down, O2 across, each cell ``energy (BLEU)``; an ``operators`` row of
system ``start`` (the model every cell is fine-tuned from) is printed below it. Rows of
tables ``solvers`` (test) and ``solver_dev`` (the step-size choice), system ``MODEL + METHOD
[N=steps] [lr=step size]``, become the test-time solver table; ``--out-png`` plots its BLEU
against sentences/s, one colour per model. Rows of tables ``converged TEST_SET`` (system
``LABEL[, seed N]``) become one table per test set, averaged over seeds. When a row was written
several times (a stage rerun), the last one counts. ``--timings`` adds the stage times.
"""

import argparse
import csv
import os
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts import translation_seed_table as seeds  # noqa: E402
from scripts import translation_solver_table as solvers  # noqa: E402

OPERATORS = ["sx", "stl", "sg", "st", "gx"]
COLUMNS = ["table", "system", "iterations", "length_beam", "bleu", "energy", "energy_lstm",
           "sentences_per_s", "length_ratio", "comma_share", "bpe_per_word", "special_share",
           "command"]
REQUIRED = COLUMNS[:7] + COLUMNS[-1:]  # the columns of the first results tables


def read_results(path: str) -> Dict[Tuple[str, str, str, str], Dict[str, str]]:
    """{(table, system, iterations, length_beam): row}, the last row of each key, in the
    order the keys first appear."""
    rows: Dict[Tuple[str, str, str, str], Dict[str, str]] = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = set(REQUIRED) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            key = (row["table"], row["system"], row["iterations"], row["length_beam"])
            rows[key] = {**dict.fromkeys(COLUMNS, "-"), **row}
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
    parser.add_argument("--out-png", help="the speed/BLEU figure of the solver rows")
    args = parser.parse_args(argv)
    rows = read_results(args.results)
    out = ["### Test BLEU and mean teacher energy (nats per sentence)", "", *main_table(rows)]
    operators = operator_table(rows)
    if operators:
        out += ["", "### Operators: energy (BLEU), validation sentences, oracle lengths, "
                "1 iteration", "", *operators]
    for title, lines in (("Test-time solvers from each NAT model (test)",
                          solvers.solver_table(rows)),
                         ("Their step sizes, chosen on dev BLEU", solvers.dev_table(rows))):
        if lines:
            out += ["", f"### {title}", "", *lines]
    converged = seeds.seed_tables(rows)
    if converged:
        out += ["", "### From the converged distilled CMLM, mean ± sd over seeds", "", *converged]
    if args.out_png and any(table == "solvers" for table, *_ in rows):
        solvers.plot(rows, args.out_png)
    elif args.out_png:
        print(f"translation_tables.py: no solver rows in {args.results}: {args.out_png} not "
              f"written", file=sys.stderr)
    if args.timings:
        out += ["", "### Stage wall times", "", *timings_table(args.timings)]
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
