#!/usr/bin/env python
"""Training-step throughput: ENGINE's energy_loss step against a CMLM cross-entropy step.

Both steps train the same NAT transformer (``cmlm_infnet`` = stock ``cmlm_transformer``,
same size, same initial weights) on the same batches of the same binarised data, in one
process, through ``task.train_step`` (forward, backward) followed by an Adam step:

- CE: task ``translation_lev``, criterion ``nat_loss``, ``--noise random_mask`` (the CMLM
  baseline's step, with its length loss);
- energy: task ``translation_energy``, criterion ``energy_loss --energy-path TEACHER --o1
  O1 --o2 O2 --ce-weight 0 --noise full_mask`` (ENGINE's step: the infnet's forward and
  backward plus the frozen teacher's forward and backward on relaxed inputs);
- the same with ``--log-train-energy`` (one more teacher forward, for the discrete energy
  of the training log);
- the cross-entropy control: ``energy_loss --energy-weight 0`` (no teacher at all).

After ``--warmup`` steps of each, the batches are timed ``--repeats`` times, alternating
CE / energy batch by batch so both see the same machine load. Reported per method: the
median milliseconds per step and median target tokens per second over all timed steps, and
each one's time relative to CE. Prints a Markdown table.

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


def parse_args(argv):
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
    return parser.parse_args(argv)


def build_methods(args):
    """{name: (task, model, criterion)}: the CMLM step first (the ratios' base), then
    ENGINE's step, ENGINE's step that also logs the discrete energy, and the cross-entropy
    control's step (energy_loss under --energy-weight 0)."""
    arch = ["--arch", "cmlm_infnet", "--encoder-layers", str(args.layers),
            "--decoder-layers", str(args.layers), "--encoder-embed-dim", str(args.dim),
            "--decoder-embed-dim", str(args.dim), "--encoder-ffn-embed-dim", str(args.ffn),
            "--decoder-ffn-embed-dim", str(args.ffn), "--encoder-attention-heads",
            str(args.heads), "--decoder-attention-heads", str(args.heads),
            "--share-all-embeddings", "--encoder-learned-pos", "--decoder-learned-pos",
            "--apply-bert-init", "--dropout", "0.1", "--seed", str(args.seed),
            *fairseq_device_flags()]
    energy = ["--task", "translation_energy", "--criterion", "energy_loss",
              "--energy-path", args.teacher, "--o1", args.o1, "--o2", args.o2,
              "--noise", "full_mask"]
    operators = f"O1={args.o1.upper()}, O2={args.o2.upper()}"
    return {
        "CMLM cross-entropy (nat_loss)": build(args.data, arch, [
            "--task", "translation_lev", "--criterion", "nat_loss", "--noise", "random_mask",
            "--label-smoothing", "0.1"]),
        f"ENGINE energy (energy_loss, {operators})": build(
            args.data, arch, [*energy, "--ce-weight", "0"]),
        f"ENGINE energy, --log-train-energy ({operators})": build(
            args.data, arch, [*energy, "--ce-weight", "0", "--log-train-energy"]),
        "cross-entropy control (energy_loss --energy-weight 0)": build(
            args.data, arch, [*energy, "--energy-weight", "0", "--label-smoothing", "0.1"]),
    }


def time_steps(methods, samples, warmup, repeats):
    """{name: (seconds per step, target tokens/s)}, each a list over the timed steps: after
    ``warmup`` steps of each method, ``repeats`` passes over ``samples``, the methods'
    order alternating batch by batch. Every model starts from the first's weights."""
    names = list(methods)
    reference_state = methods[names[0]][1].state_dict()
    optimizers = {}
    device = torch.device("cuda" if use_gpu() else "cpu")
    for name, (task, model, criterion) in methods.items():
        model.load_state_dict(reference_state)  # same size, same initial weights
        model.to(device).train()
        optimizers[name] = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step(name, sample, update):
        task, model, criterion = methods[name]
        synchronize()
        start = time.perf_counter()
        task.train_step(sample, model, criterion, _Backward(), update)
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)
        synchronize()
        return time.perf_counter() - start

    for i in range(warmup):
        for name in names:
            step(name, samples[i % len(samples)], i)
    timed = {name: ([], []) for name in names}
    for r in range(repeats):
        for i, sample in enumerate(samples):
            for name in names if (r + i) % 2 == 0 else names[::-1]:
                seconds = step(name, sample, warmup + r * len(samples) + i)
                timed[name][0].append(seconds)
                timed[name][1].append(sample["ntokens"] / seconds)
    return timed


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.disable(logging.INFO)
    methods = build_methods(args)
    first_task = next(iter(methods.values()))[0]
    samples = [utils.move_to_cuda(s) if use_gpu() else s
               for s in batches(first_task, args.max_tokens, args.batches, args.seed)]
    timed = time_steps(methods, samples, args.warmup, args.repeats)
    ntokens = sum(s["ntokens"] for s in samples)
    print(f"Training steps on {len(samples)} batches of <= {args.max_tokens} tokens "
          f"({ntokens} target tokens), {args.layers}-layer {args.dim}-d NAT transformer, "
          f"{args.threads} thread(s), {'GPU' if use_gpu() else 'CPU'}; {args.warmup} warm-up steps, median of "
          f"{args.repeats} x {len(samples)} timed steps\n")
    print("| step | ms / step | target tokens / s | relative time |")
    print("|---|---:|---:|---:|")
    base = statistics.median(next(iter(timed.values()))[0])
    for name, (seconds, rates) in timed.items():
        ms = statistics.median(seconds)
        print(f"| {name} | {1000 * ms:.0f} | {statistics.median(rates):.0f} "
              f"| {ms / base:.2f}x |")


if __name__ == "__main__":
    sys.exit(main())
