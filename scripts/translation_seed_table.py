"""The seed-averaged table of the ENGINE recipes' ``engine_converged`` group (ENGINE from the
converged distilled CMLM, its cross-entropy control, ENGINE on the references), printed by
``scripts/translation_tables.py``.

Rows come from ``results.tsv`` tables ``converged TEST_SET``, system ``LABEL[, seed N]``:
the rows of one label that differ only in the seed are one line, each value the mean over
seeds with its sample standard deviation (``±``) when there are several.
"""

import re
import statistics
from collections import OrderedDict
from typing import Dict, List, Tuple

TABLE_PREFIX = "converged "
SEED = re.compile(r"^(?P<label>.*), seed (?P<seed>\d+)$")
VALUES = [("bleu", "BLEU", 2), ("energy", "energy", 2), ("length_ratio", "length ratio", 3),
          ("comma_share", "commas (%)", 2), ("bpe_per_word", "BPE tokens / word", 3),
          ("special_share", "special (%)", 2)]


def split_seed(system: str) -> Tuple[str, str]:
    """``"ENGINE, distilled data, lr=1e-5, seed 2"`` -> (the label without the seed, "2");
    a system without a seed -> (system, "")."""
    match = SEED.match(system)
    return (match.group("label"), match.group("seed")) if match else (system, "")


def mean_cell(values: List[str], digits: int) -> str:
    """The mean of the numeric ``values`` (``-`` and empty ones left out), ``± sd`` when
    there are two or more; ``-`` when none is numeric."""
    numbers = []
    for value in values:
        try:
            numbers.append(float(value))
        except ValueError:
            continue
    if not numbers:
        return "-"
    cell = f"{statistics.mean(numbers):.{digits}f}"
    return cell + (f" ± {statistics.stdev(numbers):.{digits}f}" if len(numbers) > 1 else "")


def grouped(rows) -> Dict[str, Dict[Tuple[str, str, str], List[Dict[str, str]]]]:
    """{test set: {(label, iterations, length beam): [the row of each seed]}}, in the order
    the rows were first written."""
    groups: Dict[str, Dict] = OrderedDict()
    for (table, system, iters, lbeam), row in rows.items():
        if table.startswith(TABLE_PREFIX):
            label, seed = split_seed(system)
            test_set = groups.setdefault(table[len(TABLE_PREFIX):], OrderedDict())
            test_set.setdefault((label, iters, lbeam), []).append({**row, "seed": seed})
    return groups


def seed_tables(rows) -> List[str]:
    """One markdown table per test set (each headed by its name); empty without rows."""
    lines: List[str] = []
    for test_set, groups in grouped(rows).items():
        lines += ["", f"#### {test_set}", "",
                  "| system | seeds | iterations | length beam | "
                  + " | ".join(title for _, title, _ in VALUES) + " |",
                  "|---|---|---:|---:|" + "---:|" * len(VALUES)]
        for (label, iters, lbeam), found in groups.items():
            seeds = ",".join(row["seed"] for row in found if row["seed"]) or "-"
            cells = [mean_cell([row[key] for row in found], digits) for key, _, digits in VALUES]
            lines.append(f"| {label} | {seeds} | {iters} | {lbeam} | " + " | ".join(cells) + " |")
    return lines[1:]
