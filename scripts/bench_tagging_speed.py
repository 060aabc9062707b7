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

With ``--split-viterbi`` it then also times, in this process and on the same batches, the two
parts of Viterbi decoding — the energy's features (its encoder and emission scores) and the
dynamic program — against each inference network's forward pass and argmax (seconds for the
whole split, median of the rounds): Viterbi can be no faster than its features.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.device import fairseq_device_flags  # noqa: E402
from scripts.tagging_results import parse_score_line  # noqa: E402


def generate_command(bin_dir: str, checkpoint: str, split: str, batch_size: int,
                     extra: List[str]) -> List[str]:
    return [sys.executable, "-m", "fairseq_cli.generate", bin_dir, "--user-dir", "engine_plugin",
            "--task", "sequence_labeling", "--path", checkpoint, "--gen-subset", split,
            "--scoring", "tag_accuracy", "--batch-size", str(batch_size),
            *fairseq_device_flags(), *extra]


def sentences_per_second(cmd: List[str], env: Dict[str, str]) -> float:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.strip().splitlines()
    return float(parse_score_line(lines[-1] if lines else "")["sentences_per_s"])


def split_viterbi(bin_dir: str, energy_path: str, infnets: Dict[str, str], split: str,
                  batch_size: int, repeats: int) -> Dict[str, float]:
    """Median seconds over ``repeats`` passes of ``split``: 'energy features', 'Viterbi DP'
    and one entry per inference network (forward + argmax)."""
    import torch

    import engine_plugin  # noqa: F401
    from fairseq import checkpoint_utils

    overrides = {"data": bin_dir}
    _, _, task = checkpoint_utils.load_model_ensemble_and_task([energy_path], arg_overrides=overrides)
    energy = task.load_energy(energy_path)
    models = {name: checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides=overrides)[0][0].eval()
              for name, path in infnets.items()}
    task.load_dataset(split)
    dataset = task.dataset(split)
    batches = list(task.get_batch_iterator(dataset=dataset, max_sentences=batch_size)
                   .next_epoch_itr(shuffle=False))
    pad = task.source_dictionary.pad()
    times: Dict[str, List[float]] = {"energy features": [], "Viterbi DP": [],
                                     **{name: [] for name in models}}
    with torch.no_grad():
        for _ in range(repeats):
            totals = dict.fromkeys(times, 0.0)
            for batch in batches:
                net_input = batch["net_input"]
                mask = net_input["src_tokens"].ne(pad)
                t0 = time.perf_counter()
                context = energy.condition(net_input)
                t1 = time.perf_counter()
                energy.exact_minimum(context, mask)
                totals["energy features"] += t1 - t0
                totals["Viterbi DP"] += time.perf_counter() - t1
                for name, model in models.items():
                    t0 = time.perf_counter()
                    model(**net_input).argmax(-1)
                    totals[name] += time.perf_counter() - t0
            for name, total in totals.items():
                times[name].append(total)
    return {name: statistics.median(values) for name, values in times.items()}


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
    parser.add_argument("--split-viterbi", action="store_true",
                        help="also time Viterbi's features and DP apart, in this process")
    args = parser.parse_args(argv)

    infnets: Dict[str, str] = {}
    for spec in args.method:
        name, sep, checkpoint = spec.rpartition("=")
        if not sep or not os.path.isfile(checkpoint):
            parser.error(f"--method {spec}: expected NAME=CHECKPOINT of an existing file")
        infnets[name] = checkpoint
    commands = {"Viterbi": generate_command(args.bin, args.energy, args.split, args.batch_size,
                                            ["--inference", "viterbi"])}
    for name, checkpoint in infnets.items():
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
    if args.split_viterbi:
        import torch

        torch.set_num_threads(args.threads)
        seconds = split_viterbi(args.bin, args.energy, infnets, args.split, args.batch_size,
                                args.repeats)
        print(f"\n| part (in-process, batch {args.batch_size}) | seconds for the split "
              f"(median of {args.repeats}) |")
        print("|---|---:|")
        for name, value in seconds.items():
            print(f"| {name} | {value:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
