"""Training throughput per thread count, batch shape and concurrent runs, to choose how a
long run trains.

Resumes a checkpoint's own training configuration (its saved ``cfg``: data, model,
criterion, optimiser and learning-rate state; a CMLM, an ENGINE infnet, a teacher) for a
short run at each combination of ``--threads``, ``--copies`` (that many identical runs at
once, as when two trainings share the machine), ``--max-tokens`` and ``--update-freq``,
each run in its own process with ``OMP_NUM_THREADS`` set. Every run sees about the same
number of training tokens (``--batches`` batches of the smallest ``--max-tokens``); the data
loader starts a fresh epoch, nothing is saved and the checkpoint is only read. Throughput is
fairseq's ``wps`` (target tokens per second) per log interval, the first interval (warm-up)
left out: the median per run, summed over the copies. Reported are that total, its ratio to
the first combination and the minutes one run takes per epoch.

    python -m scripts.bench_training_throughput WORK/cmlm_distill/checkpoint_last.pt \
        --threads 1 2 --max-tokens 4096 8192 --update-freq 1 2 --json out.json
    python -m scripts.bench_training_throughput ENGINE/checkpoint_last.pt --threads 1 2 \
        --copies 1 2 --max-tokens 1024 --update-freq 8
"""

import argparse
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WPS = re.compile(r"train_inner\b.*?\bwps=([0-9.]+)")


def train_briefly(checkpoint: str, max_tokens: int, update_freq: int, updates: int) -> None:
    """In this process: resume CHECKPOINT's configuration for UPDATES more updates of
    MAX_TOKENS x UPDATE_FREQ tokens, logging every quarter of the run."""
    import engine_plugin  # noqa: F401  (safe checkpoint loading)
    from fairseq import checkpoint_utils
    from fairseq_cli import train

    state = checkpoint_utils.load_checkpoint_to_cpu(checkpoint)
    cfg = state["cfg"]
    done = state["optimizer_history"][-1]["num_updates"]
    with tempfile.TemporaryDirectory() as save_dir:
        cfg.checkpoint.save_dir = save_dir
        cfg.checkpoint.restore_file = os.path.abspath(checkpoint)
        cfg.checkpoint.finetune_from_model = None  # a resumed run, not a new one
        cfg.checkpoint.reset_dataloader = True
        cfg.checkpoint.no_save = True
        cfg.dataset.disable_validation = True
        cfg.dataset.max_tokens = max_tokens
        cfg.optimization.update_freq = [update_freq]
        cfg.optimization.max_update = done + updates
        cfg.optimization.max_epoch = 0
        cfg.common.log_format = "simple"
        cfg.common.log_interval = max(1, updates // 4)
        train.main(cfg)


def epoch_tokens(checkpoint: str) -> int:
    """Target tokens in the checkpoint's training set (one epoch)."""
    from fairseq import checkpoint_utils
    from fairseq.data import data_utils
    import engine_plugin  # noqa: F401

    task = checkpoint_utils.load_checkpoint_to_cpu(checkpoint)["cfg"].task
    data = task.data.split(":")[0]
    src, tgt = task.source_lang, task.target_lang
    if not (src and tgt):
        src, tgt = data_utils.infer_language_pair(data)
    target = data_utils.load_indexed_dataset(os.path.join(data, f"train.{src}-{tgt}.{tgt}"), None)
    return int(target.sizes.sum())


def measure(args, threads: int, copies: int, max_tokens: int, update_freq: int) -> dict:
    """One combination: COPIES child processes at once; the sum of their median wps over the
    log intervals after the first."""
    batches = args.batches * min(args.max_tokens) / max_tokens
    updates = max(8, math.ceil(batches / update_freq))
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "scripts.bench_training_throughput", args.checkpoint,
               "--child", str(max_tokens), str(update_freq), str(updates)]
    children = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for _ in range(copies)]
    medians = []
    for child in children:
        log = child.communicate()[0]
        wps = [float(m) for m in WPS.findall(log)][1:]
        if child.returncode != 0 or not wps:
            for other in children:
                other.kill()  # a failed combination stops the runs beside it
            sys.exit(f"bench_training_throughput: threads {threads}, max-tokens {max_tokens}, "
                     f"update-freq {update_freq} failed:\n{log[-3000:]}")
        medians.append(statistics.median(wps))
    return {"threads": threads, "copies": copies, "max_tokens": max_tokens,
            "update_freq": update_freq, "updates": updates, "wps": sum(medians),
            "run_wps": medians}


def report(rows, tokens: int) -> str:
    """The markdown table: throughput, ratio to the first row, minutes per epoch."""
    lines = ["| threads | runs at once | max tokens | update freq | wps (all runs) | × first | "
             "min/epoch (one run) |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['threads']} | {row['copies']} | {row['max_tokens']} | "
                     f"{row['update_freq']} | {row['wps']:.0f} | "
                     f"{row['wps'] / rows[0]['wps']:.2f} | "
                     f"{tokens * row['copies'] / row['wps'] / 60:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a checkpoint_last.pt to resume (read only)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--copies", type=int, nargs="+", default=[1],
                        help="identical runs at once (default 1)")
    parser.add_argument("--max-tokens", type=int, nargs="+", default=[4096, 8192])
    parser.add_argument("--update-freq", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, default=40,
                        help="batches of the smallest --max-tokens per run (default 40)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return train_briefly(args.checkpoint, *args.child)
    if not os.path.isfile(args.checkpoint):
        sys.exit(f"bench_training_throughput: no checkpoint {args.checkpoint}")
    rows = []
    for combo in itertools.product(args.threads, args.copies, args.max_tokens, args.update_freq):
        rows.append(measure(args, *combo))
        print("threads {}, runs {}, max-tokens {}, update-freq {}: ".format(*combo)
              + f"{rows[-1]['wps']:.0f} wps", file=sys.stderr, flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)
    print(report(rows, epoch_tokens(args.checkpoint)))


if __name__ == "__main__":
    main()
