#!/usr/bin/env python
"""Decoding speed: one-iteration NAT decoding against the AR teacher's beam search.

Runs stock ``fairseq-generate`` on the same binarised test set, on the same machine in the
same run, for every configuration below, ``--repeats`` times in rotating order (so that
all configurations see the same machine load), and reads the speed from fairseq-generate's
own ``Translated N sentences (M tokens) in Xs (S sentences/s, T tokens/s)`` line (time spent
inside ``task.inference_step``, model loading excluded):

- NAT (``--task translation_energy``): 1 iteration, length beam 1 (the headline); also
  1 iteration with length beam 3 and 10 iterations (mask-predict) with length beam 1;
- teacher (``--task translation``): beam 5 (the reference) and greedy (beam 1).

Prints a Markdown table of median sentences/s and tokens/s and the speed-up of each
configuration over teacher beam 5.

    python scripts/bench_nat_speed.py --data WORK/bin --nat WORK/engine_cmlm/checkpoint_last.pt \\
        --teacher WORK/teacher_transformer/checkpoint_last.pt [--repeats 3] [--batch-size 128]
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys

SPEED = re.compile(r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in ([\d.]+)s "
                   r"\(([\d.]+) sentences/s, ([\d.]+) tokens/s\)")
PLUGIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine_plugin")


def configurations(args):
    """[(name, fairseq-generate arguments)]; the first NAT one is the headline."""
    nat = ["--task", "translation_energy", "--path", args.nat, "--iter-decode-eos-penalty", "0",
           "--beam", "1"]
    teacher = ["--task", "translation", "--path", args.teacher]
    return [
        ("NAT, 1 iteration, length beam 1", nat + ["--iter-decode-max-iter", "0",
                                                   "--iter-decode-with-beam", "1"]),
        ("NAT, 1 iteration, length beam 3", nat + ["--iter-decode-max-iter", "0",
                                                   "--iter-decode-with-beam", "3"]),
        ("NAT, 10 iterations, length beam 1", nat + ["--iter-decode-max-iter", "9",
                                                     "--iter-decode-with-beam", "1"]),
        ("teacher, beam 5", teacher + ["--beam", "5"]),
        ("teacher, greedy", teacher + ["--beam", "1"]),
    ]


def run(data, extra, args):
    gpu = shutil.which("nvidia-smi") is not None and not args.cpu
    cmd = [sys.executable, "-m", "fairseq_cli.generate", data, "--user-dir", PLUGIN,
           "--gen-subset", args.subset, "--batch-size", str(args.batch_size), "--quiet",
           *([] if gpu else ["--cpu"]), *extra]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    text = proc.stdout + proc.stderr
    match = SPEED.search(text)
    if proc.returncode != 0 or not match:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{text[-3000:]}")
    sentences, tokens = (int(match.group(i).replace(",", "")) for i in (1, 2))
    return sentences, tokens, float(match.group(4)), float(match.group(5))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="binarised data (teacher's dictionaries)")
    parser.add_argument("--nat", required=True, help="NAT checkpoint (cmlm_infnet, ...)")
    parser.add_argument("--teacher", required=True, help="AR teacher checkpoint")
    parser.add_argument("--subset", default="test")
    parser.add_argument("--batch-size", type=int, default=128, help="sentences per batch (both)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    parser.add_argument("--cpu", action="store_true", help="CPU even where a GPU exists")
    args = parser.parse_args(argv)

    configs = configurations(args)
    speeds = {name: [] for name, _ in configs}
    counts = {}
    for r in range(args.repeats):
        for name, extra in configs[r % len(configs):] + configs[:r % len(configs)]:
            sentences, tokens, sps, tps = run(args.data, extra, args)
            speeds[name].append((sps, tps))
            counts[name] = (sentences, tokens)
            print(f"repeat {r + 1}: {name}: {sps:.1f} sentences/s, {tps:.0f} tokens/s",
                  file=sys.stderr, flush=True)

    reference = statistics.median(s for s, _ in speeds["teacher, beam 5"])
    print(f"Decoding speed on {args.subset} ({counts[configs[0][0]][0]} sentences), batch "
          f"{args.batch_size} sentences, {args.threads} thread(s), "
          f"{'GPU' if shutil.which('nvidia-smi') and not args.cpu else 'CPU'}, median of "
          f"{args.repeats}\n")
    print("| decoding | sentences/s | tokens/s | output tokens | speed-up vs teacher beam 5 |")
    print("|---|---:|---:|---:|---:|")
    for name, _ in configs:
        sps = statistics.median(s for s, _ in speeds[name])
        tps = statistics.median(t for _, t in speeds[name])
        print(f"| {name} | {sps:.1f} | {tps:.0f} | {counts[name][1]} | {sps / reference:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
