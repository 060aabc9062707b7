"""Markdown tables and a speed/accuracy plot from tagging benchmark results.

    python scripts/tagging_tables.py RESULTS.tsv [MORE.tsv ...] --out-md OUT.md --out-png OUT.png

RESULTS files are written by ``examples/tagging_benchmark.sh`` (through
``scripts/tagging_results.py``): one row per ``fairseq-generate`` run. Only test-split rows
are reported (valid rows are the step-size tuning runs); when the same (data, method, arch,
N) was decoded more than once, the last row counts. The tables follow Tu & Gimpel (2019):

- Table 1: metric per inference network architecture: local baseline, infnet, gradient
  descent and Viterbi.
- Table 3: examples per second of every method (at the batch size of its run, 10 in the
  benchmark) and the speed-up over Viterbi on the same data.
- Table 6: metric, energy of the discrete output, energy of the relaxed output and search
  error against N for gradient descent, instance tailoring and warm starts.
- Figure 2 (``--out-png``): metric against total test-set inference time.

Every value carries a command id (``[c3]``) listed under its table with the exact
``fairseq-generate`` command (and the ``fairseq-train`` command of the checkpoint it decoded).
"""

import argparse
import csv
import math
import os
from collections import OrderedDict
from typing import Dict, List, Optional

Row = Dict[str, str]

METHOD_NAMES = {
    "local": "local baseline",
    "infnet": "infnet",
    "viterbi": "Viterbi",
    "gd": "gradient descent",
    "gd_oracle": "gradient descent, oracle N and η per sentence",
    "tailored": "instance-tailored infnet",
    "warmstart": "infnet as warm start for gradient descent",
}
METHOD_ORDER = list(METHOD_NAMES)
TABLE6_ORDER = ["viterbi", "gd", "gd_oracle", "infnet", "tailored", "warmstart"]
ARCH_ORDER = ["cnn", "blstm", "seq2seq"]


def arch_name(arch: str) -> str:
    """``tagger_cnn_plus`` -> ``CNN+``; anything else is returned unchanged."""
    if not arch.startswith("tagger_"):
        return arch
    base = arch[len("tagger_"):]
    plus = base.endswith("_plus")
    base = base[: -len("_plus")] if plus else base
    return {"cnn": "CNN", "blstm": "BLSTM", "seq2seq": "seq2seq"}.get(base, base) + ("+" if plus else "")


def arch_key(arch: str):
    base = arch[len("tagger_"):] if arch.startswith("tagger_") else arch
    base = base[: -len("_plus")] if base.endswith("_plus") else base
    return (ARCH_ORDER.index(base) if base in ARCH_ORDER else len(ARCH_ORDER), arch)


def method_name(row: Row) -> str:
    name = METHOD_NAMES.get(row["method"], row["method"])
    if row["method"] == "infnet" and row["arch"].endswith("_plus"):
        name = "infnet+"
    return name


def as_int(text: str) -> Optional[int]:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def num(text: str) -> Optional[float]:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_results(paths: List[str]) -> List[Row]:
    """Test rows of all files, the last one per (data, method, arch, N), in first-seen order."""
    latest: "OrderedDict[tuple, Row]" = OrderedDict()
    for path in paths:
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                if row.get("split", "test") != "test":
                    continue
                key = (row["data"], row["method"], row["arch"], row["n"])
                latest[key] = row
    return list(latest.values())


class Commands:
    """Gives each row a short id (``c1``, ``c2``, ...) and each distinct training command one
    (``t1``, ...); ``listing`` lists the commands of the rows a table referred to."""

    def __init__(self, rows: List[Row]):
        self.ids = {id(row): f"c{i}" for i, row in enumerate(rows, 1)}
        trainings = OrderedDict((r["train_command"], None) for r in rows if r.get("train_command"))
        self.train_ids = {cmd: f"t{i}" for i, cmd in enumerate(trainings, 1)}
        self.used: List[Row] = []

    def ref(self, row: Row) -> str:
        if all(used is not row for used in self.used):
            self.used.append(row)
        return f"[{self.ids[id(row)]}]"

    def listing(self) -> List[str]:
        lines, trainings = ["", "Commands:", ""], OrderedDict()
        for row in self.used:
            line = f"- `{self.ids[id(row)]}`: `{row['command']}`"
            if row.get("train_command"):
                train_id = self.train_ids[row["train_command"]]
                trainings[train_id] = row["train_command"]
                line += f" (model from `{train_id}`)"
            lines.append(line)
        lines += [f"- `{train_id}`: `{cmd}`" for train_id, cmd in trainings.items()]
        self.used = []
        return lines + [""]


def metric_label(rows: List[Row]) -> str:
    names = {r["metric_name"] for r in rows}
    return "F1" if names == {"F1"} else "accuracy (%)" if names == {"acc"} else "metric"


def fmt(value: Optional[float], digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(header: List[str], body: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return lines


def by_data(rows: List[Row]) -> "OrderedDict[str, List[Row]]":
    groups: "OrderedDict[str, List[Row]]" = OrderedDict()
    for row in rows:
        groups.setdefault(row["data"], []).append(row)
    return groups


def sort_rows(rows: List[Row], order: List[str] = METHOD_ORDER) -> List[Row]:
    """Rows by method (in ``order``), architecture, then N."""
    def key(row):
        method = order.index(row["method"]) if row["method"] in order else len(order)
        return (method, arch_key(row["arch"]), as_int(row["n"]) or 0)
    return sorted(rows, key=key)


def table1(rows: List[Row], commands: Commands) -> List[str]:
    out = ["## Table 1: test metric by inference network architecture", "",
           "Local baselines and inference networks per architecture; gradient descent and "
           "Viterbi do not use an inference network. Best per data set in bold.", ""]
    for data, group in by_data(rows).items():
        archs = sorted({r["arch"] for r in group if r["method"] in ("local", "infnet")},
                       key=arch_key)
        header = [f"{data}: {metric_label(group)}"] + [arch_name(a) for a in archs] + ["no infnet"]
        entries = []  # (label, {column: row})
        for method in ("local", "infnet"):
            cells = {r["arch"]: r for r in group if r["method"] == method}
            if cells:
                label = "infnet+" if method == "infnet" and all(
                    a.endswith("_plus") for a in cells) else METHOD_NAMES[method]
                entries.append((label, cells))
        for row in group:
            if row["method"] == "gd_oracle":
                entries.append((f"gradient descent, oracle (N ≤ {row['n']}, η per sentence)",
                                {"": row}))
        gd = [r for r in group if r["method"] == "gd" and as_int(r["n"]) is not None]
        if gd:
            row = max(gd, key=lambda r: as_int(r["n"]))
            entries.append((f"gradient descent (N = {row['n']}, η = {row['lr']} from valid)",
                            {"": row}))
        for row in group:
            if row["method"] == "viterbi":
                entries.append(("Viterbi", {"": row}))
        best = max((num(r["metric"]) for _, cells in entries for r in cells.values()), default=None)
        body = []
        for label, cells in entries:
            line = [label]
            for column in archs + [""]:
                row = cells.get(column)
                if row is None:
                    line.append("")
                    continue
                value = fmt(num(row["metric"]))
                if num(row["metric"]) == best:
                    value = f"**{value}**"
                line.append(f"{value} {commands.ref(row)}")
            body.append(line)
        out += table(header, body) + [""]
    return out + commands.listing()


def table3(rows: List[Row], commands: Commands) -> List[str]:
    out = ["## Table 3: inference speed (test set)", "",
           "Examples (sentences) per second of the inference itself (data loading and the "
           "reference Viterbi pass for search error excluded), at the batch size of the run.", ""]
    header = ["data", "method", "arch", "N", "batch", "examples/s", "× Viterbi", "test time (s)",
              "cmd"]
    body = []
    for data, group in by_data(rows).items():
        viterbi = next((num(r["sentences_per_s"]) for r in group if r["method"] == "viterbi"), None)
        for row in sort_rows(group):
            speed = num(row["sentences_per_s"])
            sentences = num(row["sentences"])
            ratio = speed / viterbi if speed and viterbi else None
            seconds = sentences / speed if speed and sentences else None
            body.append([data, method_name(row), arch_name(row["arch"]) if row["arch"] != "-" else "",
                         row["n"] if row["n"] != "-" else "", row["batch_size"], fmt(speed, 1),
                         fmt(ratio, 2), fmt(seconds, 2), commands.ref(row)])
    return out + table(header, body) + commands.listing()


def table6(rows: List[Row], commands: Commands) -> List[str]:
    out = ["## Table 6: metric and energy against the number of steps N", "",
           "`energy` is the mean energy of the discrete output (for an infnet: its "
           "discretised output), `relaxed` that of the relaxed output before the argmax, "
           "`search error` the mean of E(x, ŷ) − E(x, y_Viterbi) and `exact` the share of "
           "sentences without search error. η for gradient descent, tailoring and warm "
           "starts was chosen on the validation split for each N.", ""]
    header = ["data", "method", "arch", "N", "η", "metric", "energy ↓", "relaxed ↓",
              "search error ↓", "exact (%)", "cmd"]
    body = []
    for data, group in by_data(rows).items():
        refined = {r["arch"] for r in group if r["method"] in ("tailored", "warmstart")}
        chosen = [r for r in group if r["method"] in ("viterbi", "gd", "gd_oracle", "tailored",
                                                      "warmstart")
                  or (r["method"] == "infnet" and (not refined or r["arch"] in refined))]
        for row in sort_rows(chosen, TABLE6_ORDER):
            body.append([data, method_name(row), arch_name(row["arch"]) if row["arch"] != "-" else "",
                         row["n"] if row["n"] != "-" else "", row["lr"] if row["lr"] != "-" else "",
                         f"{fmt(num(row['metric']))} ({row['metric_name']})",
                         fmt(num(row["energy"])), fmt(num(row["energy_relaxed"])),
                         fmt(num(row["search_error"]), 3), fmt(num(row["zero_search_error"]), 1),
                         commands.ref(row)])
    return out + table(header, body) + commands.listing()


def plot(rows: List[Row], path: str) -> None:
    """Figure 2: metric against total test-set inference time, one panel per data set.
    Gradient descent, tailoring and warm starts are curves labelled with N; an
    architecture keeps its colour (filled: infnet, hollow: local baseline)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = ["tab:blue", "tab:orange", "tab:green", "tab:brown", "tab:pink", "tab:cyan"]
    groups = by_data(rows)
    fig, axes = plt.subplots(1, len(groups), figsize=(9 * len(groups), 5), squeeze=False)
    for ax, (data, group) in zip(axes[0], groups.items()):
        archs = sorted({r["arch"] for r in group if r["arch"] != "-"}, key=arch_key)
        colour = {a: palette[i % len(palette)] for i, a in enumerate(archs)}
        colour["-"] = "black"

        def seconds(row):
            speed, sentences = num(row["sentences_per_s"]), num(row["sentences"])
            return sentences / speed if speed and sentences else math.nan

        curves: "OrderedDict[tuple, List[Row]]" = OrderedDict()
        for row in sort_rows(group):
            if row["method"] in ("gd", "tailored", "warmstart"):
                curves.setdefault((row["method"], row["arch"]), []).append(row)
        styles = {"gd": ("-", "o"), "tailored": ("--", "^"), "warmstart": (":", "v")}
        for (method, arch), curve in curves.items():
            curve.sort(key=lambda r: as_int(r["n"]) or 0)
            xs, ys = [seconds(r) for r in curve], [num(r["metric"]) for r in curve]
            label = "GD" if method == "gd" else f"{METHOD_NAMES[method]} ({arch_name(arch)})"
            line, marker = styles[method]
            ax.plot(xs, ys, line, marker=marker, ms=5, color=colour[arch], label=label)
            for x, y, row in zip(xs, ys, curve):
                ax.annotate(row["n"], (x, y), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
        for row in sort_rows(group):
            x, y, c = seconds(row), num(row["metric"]), colour[row["arch"]]
            label = method_name(row) + (f" ({arch_name(row['arch'])})" if row["arch"] != "-" else "")
            if row["method"] == "viterbi":
                ax.scatter([x], [y], marker="*", s=160, color="tab:red", label=label, zorder=4)
            elif row["method"] == "gd_oracle":
                ax.scatter([x], [y], marker="X", s=70, color="tab:purple", label=label, zorder=4)
            elif row["method"] == "infnet":
                ax.scatter([x], [y], marker="s", s=50, color=c, label=label, zorder=4)
            elif row["method"] == "local":
                ax.scatter([x], [y], marker="D", s=50, facecolors="none", edgecolors=c,
                           label=label, zorder=4)
        ax.set_xscale("log")
        ax.set_xlabel("total inference time for the test set (s, log scale)")
        ax.set_ylabel(metric_label(group))
        ax.set_title(f"{data}: speed / {metric_label(group)} (test)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(rows: List[Row]) -> str:
    commands = Commands(rows)
    lines = ["# Tagging benchmark: approximate inference against exact Viterbi", "",
             "Generated by `scripts/tagging_tables.py` from the rows of "
             "`examples/tagging_benchmark.sh` (test split only).", ""]
    lines += table1(rows, commands) + [""] + table3(rows, commands) + [""] + table6(rows, commands)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="TSV files of tagging_benchmark.sh")
    parser.add_argument("--out-md", required=True)
    parser.add_argument("--out-png", required=True)
    args = parser.parse_args(argv)
    rows = read_results(args.results)
    if not rows:
        raise SystemExit(f"no test rows in {', '.join(args.results)}")
    for path in (args.out_md, args.out_png):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(args.out_md, "w", encoding="utf-8") as f:
        f.write(render(rows))
    plot(rows, args.out_png)
    print(f"wrote {args.out_md} and {args.out_png} ({len(rows)} runs)")


if __name__ == "__main__":
    main()
