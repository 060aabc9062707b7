#!/usr/bin/env python
"""The size presets of the ENGINE pipeline (``examples/engine_presets.tsv``) as shell defaults.

    eval "$(python scripts/engine_preset.py examples/engine_presets.tsv multi30k [--smoke] \\
        [--engine-config recipe])"

prints one ``: "${VAR:=value}"`` line per variable of the table, so that a variable already
set in the environment keeps its value. The value is the preset's column, replaced by the
``recipe`` column with ``--engine-config recipe`` (ENGINE's earlier configuration instead of
its authors') and by the ``smoke`` column with ``--smoke`` (tiny models, a handful of
updates), where those columns have one. ``-`` is the empty value; ``$NAME`` is the value of
the variable NAME (defined above it in the table).

    python scripts/engine_preset.py examples/engine_presets.tsv --markdown multi30k [iwslt14 ...]

prints the table of variables, defaults and meanings that the recipes' READMEs show.
"""

import argparse
import csv
import os
import re
import sys
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.script_errors import exit_status  # noqa: E402

LAYERS = ("smoke", "recipe")  # columns laid over a preset by --smoke / --engine-config recipe
ENGINE_CONFIGS = ("authors", "recipe")
_VALUE = re.compile(r"^[A-Za-z0-9_.,: -]*$")
_REFERENCE = re.compile(r"^\$([A-Z][A-Z0-9_]*)$")


def read_table(path: str) -> List[Dict[str, str]]:
    """The rows of the preset table, checked: every value is plain text or a reference to a
    variable of an earlier row."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or not {"variable", "meaning", *LAYERS} <= set(rows[0]):
        raise ValueError(f"{path}: needs the columns variable, <presets...>, smoke, recipe, "
                         "meaning")
    seen = set()
    for row in rows:
        for column, value in row.items():
            if column in ("variable", "meaning"):
                continue
            if value == "" and column not in LAYERS:
                raise ValueError(f"{path}: {row['variable']} has no {column} value (write - "
                                 "for the empty value)")
            reference = _REFERENCE.match(value)
            if reference and reference.group(1) not in seen:
                raise ValueError(f"{path}: {row['variable']} ({column}) refers to "
                                 f"{value}, which is not defined above it")
            if not reference and not _VALUE.match(value):
                raise ValueError(f"{path}: {row['variable']} ({column}) = {value!r}: only "
                                 "letters, digits, spaces and _.,:- or a $NAME reference")
        seen.add(row["variable"])
    return rows


def presets(rows: List[Dict[str, str]]) -> List[str]:
    return [c for c in rows[0] if c not in ("variable", "meaning", *LAYERS)]


def resolve(rows: List[Dict[str, str]], preset: str, smoke: bool = False,
            engine_config: str = "authors") -> Dict[str, str]:
    """{variable: value} of ``preset`` with the chosen layers on top (smoke over recipe)."""
    if preset not in presets(rows):
        raise ValueError(f"unknown preset {preset!r}: one of {', '.join(presets(rows))}")
    if engine_config not in ENGINE_CONFIGS:
        raise ValueError(f"ENGINE_CONFIG={engine_config}: authors or recipe")
    layers = [preset] + (["recipe"] if engine_config == "recipe" else []) + (
        ["smoke"] if smoke else [])
    values = {}
    for row in rows:
        chosen = [row[layer] for layer in layers if row[layer] != ""]
        values[row["variable"]] = chosen[-1]
    return values


def shell_defaults(values: Dict[str, str]) -> str:
    lines = []
    for name, value in values.items():
        value = "" if value == "-" else value
        reference = _REFERENCE.match(value)
        lines.append(f': "${{{name}:=${{{reference.group(1)}}}}}"' if reference
                     else f': "${{{name}:={value}}}"')
    return "\n".join(lines)


def markdown(rows: List[Dict[str, str]], columns: List[str]) -> str:
    def cell(value: str) -> str:
        return "" if value == "" else ("all" if value == "-" else f"`{value}`")

    header = ["variable", *columns, "SMOKE=1", "ENGINE_CONFIG=recipe", "meaning"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [f"`{row['variable']}`", *(cell(row[c]) for c in columns),
                 cell(row["smoke"]), cell(row["recipe"]), row["meaning"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("table")
    parser.add_argument("preset", nargs="?")
    parser.add_argument("--smoke", action="store_true", help="the smoke column on top")
    parser.add_argument("--engine-config", default="authors", help="authors (default) or recipe")
    parser.add_argument("--markdown", nargs="+", metavar="PRESET",
                        help="print the README table of these presets instead")
    args = parser.parse_args(argv)
    return exit_status("engine_preset.py", lambda: print(report(args)))


def report(args) -> str:
    """What ``main`` prints: the README table of ``--markdown`` presets, or the shell
    defaults of one preset."""
    rows = read_table(args.table)
    if args.markdown:
        unknown = set(args.markdown) - set(presets(rows))
        if unknown:
            raise ValueError(f"unknown presets {sorted(unknown)}")
        return markdown(rows, args.markdown)
    if args.preset is None:
        raise ValueError("give a preset (or --markdown PRESET...)")
    return shell_defaults(resolve(rows, args.preset, args.smoke, args.engine_config))


if __name__ == "__main__":
    sys.exit(main())
