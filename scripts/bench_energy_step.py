#!/usr/bin/env python
"""Training-step throughput: ENGINE's energy_loss step against a CMLM cross-entropy step.

Both steps train the same NAT transformer (``cmlm_infnet`` = stock ``cmlm_transformer``,
same size, same initial weights) on the same batches of the same binarised data, in one
process, through ``task.train_step`` (forward, backward) followed by an Adam step:

- CE: task ``translation_lev``, criterion ``nat_loss``, ``--noise random_mask`` (the CMLM
  baseline's step, with its length loss);
- energy: task ``translation_energy``, criterion ``energy_loss --energy-path TEACHER --o1
  O1 --o2 O2 --ce-weight 0 --noise full_mask`` (ENGINE's step: the infnet's forward and
  backward plus the frozen teacher's forward and backward on relaxed inputs).

After ``--warmup`` steps of each, the batches are timed ``--repeats`` times, alternating
CE / energy batch by batch so both see the same machine load. Reported per method: the
median milliseconds per step and median target tokens per second over all timed steps, and
the ratio energy / CE. Prints a Markdown table.

    python scripts/bench_energy_step.py --data WORK/bin \\
        --teacher WORK/teacher_transformer/checkpoint_last.pt \\
        --layers 3 --dim 256 --ffn 512 --heads 4 --max-tokens 1024 --batches 10
"""

import argparse
import logging
import os
import statistics
import sys
import time
import warnings

import torch
from fairseq import utils

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.device import fairseq_device_flags, synchronize, use_gpu  # noqa: E402

PLUGIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "engine_plugin")


class _Backward:
    """The part of fairseq's optimizer wrapper that ``task.train_step`` calls."""

    @staticmethod
    def backward(loss):
        loss.backward()


def build(data, arch_args, extra):
    """(task, model, criterion) as fairseq-train builds them from these arguments."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [data, "--user-dir", PLUGIN, *arch_args, *extra])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(1)
    return task, task.build_model(cfg.model), task.build_criterion(cfg.criterion)


def batches(task, max_tokens, count, seed):
    task.load_dataset("train")
    iterator = task.get_batch_iterator(
        dataset=task.dataset("train"), max_tokens=max_tokens, seed=seed,
        required_batch_size_multiple=1, num_workers=0,
    ).next_epoch_itr(shuffle=True)
    out = []
    for sample in iterator:
        out.append(sample)
        if len(out) == count:
            break
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="binarised data of the teacher")
    parser.add_argument("--teacher", required=True, help="AR teacher checkpoint (the energy)")
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--ffn", type=int, default=512)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--o1", default="sx")
    parser.add_argument("--o2", default="st")
    parser.add_argument("--max-tokens", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.disable(logging.INFO)

    arch = ["--arch", "cmlm_infnet", "--encoder-layers", str(args.layers),
            "--decoder-layers", str(args.layers), "--encoder-embed-dim", str(args.dim),
            "--decoder-embed-dim", str(args.dim), "--encoder-ffn-embed-dim", str(args.ffn),
            "--decoder-ffn-embed-dim", str(args.ffn), "--encoder-attention-heads",
            str(args.heads), "--decoder-attention-heads", str(args.heads),
            "--share-all-embeddings", "--encoder-learned-pos", "--decoder-learned-pos",
            "--apply-bert-init", "--dropout", "0.1", "--seed", str(args.seed),
            *fairseq_device_flags()]
    methods = {
        "CMLM cross-entropy (nat_loss)": build(args.data, arch, [
            "--task", "translation_lev", "--criterion", "nat_loss", "--noise", "random_mask",
            "--label-smoothing", "0.1"]),
        f"ENGINE energy (energy_loss, O1={args.o1.upper()}, O2={args.o2.upper()})": build(
            args.data, arch, [
                "--task", "translation_energy", "--criterion", "energy_loss",
                "--energy-path", args.teacher, "--o1", args.o1, "--o2", args.o2,
                "--ce-weight", "0", "--noise", "full_mask"]),
    }
    names = list(methods)
    reference_state = methods[names[0]][1].state_dict()
    optimizers = {}
    device = torch.device("cuda" if use_gpu() else "cpu")
    for name, (task, model, criterion) in methods.items():
        model.load_state_dict(reference_state)  # same size, same initial weights
        model.to(device).train()
        optimizers[name] = torch.optim.Adam(model.parameters(), lr=1e-5)
    samples = [utils.move_to_cuda(s) if use_gpu() else s
               for s in batches(methods[names[0]][0], args.max_tokens, args.batches, args.seed)]

    def step(name, sample, update):
        task, model, criterion = methods[name]
        optimizer = optimizers[name]
        synchronize()
        start = time.perf_counter()
        task.train_step(sample, model, criterion, _Backward(), update)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize()
        return time.perf_counter() - start

    for i in range(args.warmup):
        for name in names:
            step(name, samples[i % len(samples)], i)
    times = {name: [] for name in names}
    rates = {name: [] for name in names}
    for r in range(args.repeats):
        for i, sample in enumerate(samples):
            tokens = sample["ntokens"]
            order = names if (r + i) % 2 == 0 else names[::-1]
            for name in order:
                seconds = step(name, sample, args.warmup + r * len(samples) + i)
                times[name].append(seconds)
                rates[name].append(tokens / seconds)

    ntokens = sum(s["ntokens"] for s in samples)
    print(f"Training steps on {len(samples)} batches of <= {args.max_tokens} tokens "
          f"({ntokens} target tokens), {args.layers}-layer {args.dim}-d NAT transformer, "
          f"{args.threads} thread(s), {'GPU' if use_gpu() else 'CPU'}; {args.warmup} warm-up steps, median of "
          f"{args.repeats} x {len(samples)} timed steps\n")
    print("| step | ms / step | target tokens / s | relative time |")
    print("|---|---:|---:|---:|")
    base = statistics.median(times[names[0]])
    for name in names:
        ms = statistics.median(times[name])
        print(f"| {name} | {1000 * ms:.0f} | {statistics.median(rates[name]):.0f} "
              f"| {ms / base:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
