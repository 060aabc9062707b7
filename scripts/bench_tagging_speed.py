#!/usr/bin/env python
"""Sentences per second of tagging inference methods against Viterbi, in one run: each
method is one ``fairseq-generate --task sequence_labeling`` command on the same split and
batch size; the commands are run in turn, ``--repeats`` rounds (rotating the order each
round, so that no method always runs first or last), and the speed each reports (the
inference itself, as in the benchmark's Table 3) is summarised by its median.

    python scripts/bench_tagging_speed.py BIN ENERGY.pt --method cnn=INFNET.pt \\
        [--method blstm=OTHER.pt] [--batch-size 10] [--repeats 5] [--split test] [--threads 1]

Prints a Markdown table: method, median sentences/s, the speed of each round, and the
median's ratio to Viterbi's.
"""

import argparse
import os
import statistics
import subprocess
import sys
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.tagging_results import parse_score_line  # noqa: E402


def generate_command(bin_dir: str, checkpoint: str, split: str, batch_size: int,
                     extra: List[str]) -> List[str]:
    return [sys.executable, "-m", "fairseq_cli.generate", bin_dir, "--user-dir", "engine_plugin",
            "--task", "sequence_labeling", "--path", checkpoint, "--gen-subset", split,
            "--scoring", "tag_accuracy", "--batch-size", str(batch_size), "--cpu", *extra]


def sentences_per_second(cmd: List[str], env: Dict[str, str]) -> float:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    return float(parse_score_line(lines[-1] if lines else "")["sentences_per_s"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bin", help="fairseq-preprocess output of the tagging data")
    parser.add_argument("energy", help="the CRF energy (decoded by Viterbi)")
    parser.add_argument("--method", action="append", default=[], metavar="NAME=INFNET.pt",
                        help="an inference network, decoded with --inference infnet")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    args = parser.parse_args(argv)

    commands = {"Viterbi": generate_command(args.bin, args.energy, args.split, args.batch_size,
                                            ["--inference", "viterbi"])}
    for spec in args.method:
        name, sep, checkpoint = spec.rpartition("=")
        if not sep or not os.path.isfile(checkpoint):
            parser.error(f"--method {spec}: expected NAME=CHECKPOINT of an existing file")
        commands[name] = generate_command(args.bin, checkpoint, args.split, args.batch_size,
                                          ["--inference", "infnet", "--energy-path", args.energy])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore")
    names = list(commands)
    speeds: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            speeds[name].append(sentences_per_second(commands[name], env))
            print(f"round {r + 1}: {name} {speeds[name][-1]:.1f} sentences/s", file=sys.stderr)
    viterbi = statistics.median(speeds["Viterbi"])
    print(f"| method | sentences/s (median of {args.repeats}) | rounds | × Viterbi |")
    print("|---|---:|---|---:|")
    for name in names:
        median = statistics.median(speeds[name])
        rounds = ", ".join(f"{s:.0f}" for s in speeds[name])
        print(f"| {name} | {median:.1f} | {rounds} | {median / viterbi:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
