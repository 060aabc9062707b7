#!/usr/bin/env python
"""Draw training curves (energy, CE, accuracy, BLEU, ...) of fairseq-train runs to a PNG.

    python scripts/plot_training.py RUN [RUN ...] --out curves.png [--metrics energy ce bleu]

Each RUN is a fairseq-train log (``--log-format simple`` or ``json``, the text fairseq prints)
or a ``--tensorboard-logdir`` directory (its ``train``/``valid`` event files). One panel per
metric, one line per run and split (train: epoch averages, valid), against updates. Metrics
that a run did not log are left out of its panels; ``--metrics`` defaults to those found.
"""

import argparse
import json
import os
import re
import struct
import sys
from collections import defaultdict
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.script_errors import exit_status  # noqa: E402

Curves = Dict[Tuple[str, str], List[Tuple[int, float]]]  # (split, metric) -> [(update, value)]
DEFAULT_METRICS = ("energy", "energy_discrete", "ce", "loss", "acc", "bleu")
SPLITS = ("train", "valid")
LINE = re.compile(r"\| INFO \| (train|valid) \| (.*)$")


def read_log(path: str) -> Curves:
    """Epoch-level train and valid statistics of a fairseq-train log."""
    curves = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for line in f:
            match = LINE.search(line)
            if match:
                split, stats = match.group(1), _stats(match.group(2), match.group(1))
                if "num_updates" in stats:
                    step = int(stats.pop("num_updates"))
                    for name, value in stats.items():
                        curves[split, name].append((step, value))
    return dict(curves)


def _stats(text: str, split: str) -> Dict[str, float]:
    """``| key value |`` pieces (simple format) or a JSON object (json format)."""
    if text.startswith("{"):
        items = json.loads(text).items()
        items = ((k[len(split) + 1:] if k.startswith(split + "_") else k, v) for k, v in items)
    else:
        items = (piece.strip().split(" ", 1) for piece in text.split(" | "))
        items = (pair for pair in items if len(pair) == 2)
    stats = {}
    for name, value in items:
        try:
            stats[name] = float(value)
        except (TypeError, ValueError):
            continue
    return stats


def read_event_file(path: str) -> List[Tuple[str, int, float]]:
    """(tag, step, value) of every scalar in one TensorBoard event file (TFRecord framing:
    length, its CRC, the serialised ``Event``, its CRC)."""
    from tensorboardX.proto import event_pb2

    scalars = []
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if len(header) < 12:
                return scalars
            (length,) = struct.unpack("<Q", header[:8])
            event = event_pb2.Event.FromString(f.read(length))
            f.read(4)
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":
                    scalars.append((value.tag, event.step, value.simple_value))


def read_tensorboard(logdir: str) -> Curves:
    """The ``train`` and ``valid`` scalars of a ``--tensorboard-logdir`` directory."""
    curves = defaultdict(list)
    for split in SPLITS:
        folder = os.path.join(logdir, split)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.startswith("events.out.tfevents"):
                for tag, step, value in read_event_file(os.path.join(folder, name)):
                    curves[split, tag].append((step, value))
    return {key: sorted(points) for key, points in curves.items()}


def read_run(path: str) -> Curves:
    curves = read_tensorboard(path) if os.path.isdir(path) else read_log(path)
    if not curves:
        raise ValueError(f"{path}: no train/valid statistics found; give a fairseq-train log "
                         "or a --tensorboard-logdir directory")
    return curves


def plot(runs: Dict[str, Curves], metrics: List[str], out: str) -> None:
    """One panel per metric; a line per run and split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for label, curves in runs.items():
            for split in SPLITS:
                points = curves.get((split, metric))
                if points:
                    ax.plot(*zip(*points), marker=".", label=f"{label} {split}",
                            linestyle="-" if split == "valid" else "--")
        ax.set_title(metric)
        ax.set_xlabel("updates")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="fairseq-train logs or tensorboard log dirs")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--metrics", nargs="+", help=f"default: those of {DEFAULT_METRICS} found")
    parser.add_argument("--labels", nargs="+", help="legend names of the runs (default: paths)")
    args = parser.parse_args(argv)
    labels = args.labels or args.runs
    if len(labels) != len(args.runs):
        parser.error(f"--labels: {len(labels)} names for {len(args.runs)} runs")
    return exit_status("plot_training.py", lambda: draw(dict(zip(labels, args.runs)), args))


def draw(paths: Dict[str, str], args) -> None:
    """Reads the runs ``{label: path}`` and plots ``args.metrics`` (default: those of
    ``DEFAULT_METRICS`` found) into ``args.out``; ValueError when a metric is in no run."""
    runs = {label: read_run(path) for label, path in paths.items()}
    found = {metric for curves in runs.values() for _, metric in curves}
    metrics = args.metrics or [m for m in DEFAULT_METRICS if m in found]
    missing = [m for m in metrics if m not in found]
    if missing or not metrics:
        raise ValueError(f"metrics {missing or DEFAULT_METRICS} not in any run (found: "
                         f"{', '.join(sorted(found))})")
    plot(runs, metrics, args.out)
    print(f"wrote {args.out}: {', '.join(metrics)} of {len(runs)} run(s)")


if __name__ == "__main__":
    sys.exit(main())
