"""The test-time solver table of the ENGINE recipes (``EXPERIMENTS=solvers``): each NAT
model's own decode, then warm-started gradient descent and tailoring from it, against the
teacher's beam search; and its speed/BLEU figure (``scripts/translation_tables.py
--out-png``).

Rows come from ``results.tsv`` tables ``solvers`` (test) and ``solver_dev`` (the step sizes
tried on dev), system ``MODEL + METHOD [N=steps] [lr=step size]``, e.g. ``CMLM + warmstart
N=5 lr=1``, ``CMLM + infnet`` or ``transformer teacher + beam 5``.
"""

from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional

METHOD_NAMES = {"infnet": "the NAT's decode", "warmstart": "warm start",
                "tailored": "tailoring"}


class Solver(NamedTuple):
    model: str
    method: str
    steps: str  # "" without N=
    lr: str  # "" without lr=


def parse_system(system: str) -> Solver:
    """``MODEL + METHOD [N=steps] [lr=step size]`` -> its parts (the method may have spaces:
    ``transformer teacher + beam 5``)."""
    model, plus, rest = system.rpartition(" + ")
    if not plus:
        raise ValueError(f"solver row {system!r}: expected 'MODEL + METHOD [N=..] [lr=..]'")
    words, options = [], {}
    for word in rest.split():
        key, equals, value = word.partition("=")
        if equals:
            options[key] = value
        else:
            words.append(word)
    return Solver(model, " ".join(words), options.get("N", ""), options.get("lr", ""))


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _rows(rows, table: str) -> List[tuple]:
    return [(parse_system(system), row) for (name, system, _, _), row in rows.items()
            if name == table]


def solver_table(rows) -> List[str]:
    """The ``solvers`` rows as a markdown table (empty without any)."""
    found = _rows(rows, "solvers")
    if not found:
        return []
    lines = ["| model | solver | N | step size | BLEU | energy | length ratio | commas (%) "
             "| BPE tokens / word | special (%) | sentences/s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for solver, row in found:
        lines.append(
            f"| {solver.model} | {METHOD_NAMES.get(solver.method, solver.method)} "
            f"| {solver.steps} | {solver.lr} | {row['bleu']} | {row['energy']} "
            f"| {row['length_ratio']} | {row['comma_share']} | {row['bpe_per_word']} "
            f"| {row['special_share']} | {row['sentences_per_s']} |")
    return lines


def dev_table(rows) -> List[str]:
    """The ``solver_dev`` rows (the step sizes tried on dev) as a markdown table."""
    found = _rows(rows, "solver_dev")
    if not found:
        return []
    lines = ["| model | solver | N | step size | dev BLEU | dev energy |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {s.model} | {METHOD_NAMES.get(s.method, s.method)} | {s.steps} | {s.lr} "
              f"| {row['bleu']} | {row['energy']} |" for s, row in found]
    return lines


def _curves(found) -> "OrderedDict[tuple, List[tuple]]":
    """{(model, method): [(sentences/s, BLEU, N label)]} of the solver rows, N ascending;
    a model's own decode starts each of its curves at N = 0."""
    curves: "OrderedDict[tuple, List[tuple]]" = OrderedDict()
    start: Dict[str, tuple] = {}
    for solver, row in found:
        point = (_number(row["sentences_per_s"]), _number(row["bleu"]), solver.steps or "0")
        if solver.method == "infnet":
            start[solver.model] = point
        elif solver.method in ("warmstart", "tailored"):
            curves.setdefault((solver.model, solver.method), []).append(point)
    for (model, _), points in curves.items():
        points.sort(key=lambda p: int(p[2]))
        if model in start:
            points.insert(0, start[model])
    return curves


def plot(rows, path: str) -> None:
    """BLEU against test sentences/s (log scale): per model a warm-start curve (dotted) and
    a tailoring curve (dashed) from its own decode (square), labelled with N; the other
    rows (the teacher's beam searches) as stars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = _rows(rows, "solvers")
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:brown", "tab:pink", "tab:cyan"]
    models = list(OrderedDict.fromkeys(s.model for s, _ in found
                                       if s.method in METHOD_NAMES))
    colour = {m: palette[i % len(palette)] for i, m in enumerate(models)}
    styles = {"warmstart": ":v", "tailored": "--^"}
    fig, ax = plt.subplots(figsize=(9, 5))
    for (model, method), points in _curves(found).items():
        xs, ys, labels = zip(*points)
        ax.plot(xs, ys, styles[method], ms=5, color=colour[model],
                label=f"{model}: {METHOD_NAMES[method]}")
        for x, y, label in zip(xs, ys, labels):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    for solver, row in found:
        x, y = _number(row["sentences_per_s"]), _number(row["bleu"])
        if solver.method == "infnet":
            ax.scatter([x], [y], marker="s", s=50, color=colour[solver.model], zorder=4,
                       label=f"{solver.model}: {METHOD_NAMES['infnet']}")
        elif solver.method not in METHOD_NAMES and x is not None and y is not None:
            ax.scatter([x], [y], marker="*", s=160, zorder=4,
                       label=f"{solver.model}, {solver.method}")
    ax.set_xscale("log")
    ax.set_xlabel("test sentences per second (log scale)")
    ax.set_ylabel("BLEU")
    ax.set_title("translation: speed / BLEU of test-time energy minimisation (test)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
