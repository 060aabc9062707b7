"""Times the CRF's ``nll`` forward + backward, ``marginals`` and ``viterbi`` against its peers
on the CPU.

Contestants get identical random potentials (N(0, 1) transitions, start, end and emissions):

- ``ours``: ``LinearChainCRF`` of this checkout (scaled exp-space forward-backward).
- ``before``: ``LinearChainCRF`` of another git revision (``--before REV``, loaded from
  ``git show REV:engine_plugin/crf.py``): the log-space recursion with autograd.
- ``torchcrf``: pytorch-crf's ``CRF`` (``-forward(...)`` is the nll; it has no marginals).
- ``torchstruct``: torch-struct's ``LinearChainCRF`` over edge potentials ``(B, T-1, L, L)``
  built from the same scores (nll = ``-log_prob``; marginals from its edge marginals).
  Skipped where its parallel scan would need more than ``--struct-max-gb`` of memory.

Viterbi (under ``no_grad``) is timed against ``before`` and pytorch-crf's ``decode``.
Before timing, every configuration checks that all contestants agree (nll, marginals,
identical Viterbi paths).
Then they run interleaved, rotating who goes first, for ``--repeats`` rounds (fewer for
calls over 100 ms); reported are median milliseconds and ``peer / ours`` ratios.
Ragged masks draw lengths in [2, T] (torch-struct needs two positions), full masks use T.

    python -m scripts.bench_crf --threads 1 2 --labels 17 25 401 --json crf_bench.json
"""

import argparse
import importlib.util
import warnings
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from engine_plugin.crf import LinearChainCRF

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# the last revision whose CRF was the single module engine_plugin/crf.py (the log-space
# recursion with autograd through every step), before the engine_plugin/crf/ package
PREVIOUS_CRF = "1cd8ab0"


def load_before(rev: str = PREVIOUS_CRF):
    """``LinearChainCRF`` of ``engine_plugin/crf.py`` at git revision ``rev``.

    Raises:
        LookupError: this checkout has no such revision, or no crf.py there (a shallow
            clone: fetch the history, or pass ``--before none``).
    """
    proc = subprocess.run(["git", "show", f"{rev}:engine_plugin/crf.py"], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise LookupError(f"--before {rev}: no engine_plugin/crf.py at that git revision "
                          f"({proc.stderr.strip()}); pass another revision or --before none")
    source = proc.stdout
    path = os.path.join(tempfile.mkdtemp(), "crf_before.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("crf_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LinearChainCRF


def make_problem(num_labels, batch, length, ragged, seed):
    """(ours, emissions (B, T, L), tags (B, T), mask (B, T), lengths (B,))."""
    g = torch.Generator().manual_seed(seed)
    ours = LinearChainCRF(num_labels)
    with torch.no_grad():
        for p in ours.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    emissions = torch.randn(batch, length, num_labels, generator=g).requires_grad_()
    tags = torch.randint(0, num_labels, (batch, length), generator=g)
    lengths = torch.full((batch,), length)
    if ragged:
        lengths = torch.randint(2, length + 1, (batch,), generator=g)
        lengths[0] = length
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return ours, emissions, tags.masked_fill(~mask, 0), mask, lengths


def copy_into(ours, other, names=("transitions", "start", "end")):
    with torch.no_grad():
        for mine, theirs in zip(("transitions", "start", "end"), names):
            getattr(other, theirs).copy_(getattr(ours, mine))
    return other


def struct_potentials(crf, emissions, lengths):
    """torch-struct edge scores ``[b, n, j, i]`` of labels i at n and j at n + 1, (B, T-1, L, L),
    with the start and first emission on n = 0 and the end score on the last edge."""
    B, T, L = emissions.shape
    edges = emissions[:, 1:, :, None] + crf.transitions.t()
    first = (emissions[:, 0] + crf.start).view(B, 1, 1, L)
    at_first = torch.zeros(T - 1, dtype=emissions.dtype)
    at_first[0] = 1
    at_last = torch.nn.functional.one_hot(lengths - 2, T - 1).to(emissions.dtype)
    return (edges + at_first.view(1, T - 1, 1, 1) * first
            + at_last.view(B, T - 1, 1, 1) * crf.end.view(1, 1, L, 1)).contiguous()


def struct_marginals(crf, emissions, lengths):
    """Unary marginals (B, T, L) from torch-struct's edge marginals."""
    import torch_struct

    edge = torch_struct.LinearChainCRF(struct_potentials(crf, emissions, lengths),
                                       lengths=lengths).marginals
    return torch.cat([edge[:, :1].sum(2), edge.sum(3)], 1)


def struct_nll(crf, emissions, tags, lengths):
    import torch_struct

    dist = torch_struct.LinearChainCRF(struct_potentials(crf, emissions, lengths),
                                       lengths=lengths)
    parts = torch_struct.LinearChainCRF.struct.to_parts(tags, crf.num_labels, lengths=lengths)
    return -dist.log_prob(parts.to(emissions.dtype).contiguous()).sum()


def struct_fits(batch, length, num_labels, max_gb) -> bool:
    """torch-struct's log-semiring scan materialises (B, T/2, L, L, L) sums (x2: backward)."""
    return batch * max(length // 2, 1) * num_labels ** 3 * 4 * 2 <= max_gb * 2 ** 30


def contestants(num_labels, ragged, args, before_cls):
    """{task: {name: callable}} for one configuration, and the inputs they share."""
    ours, emissions, tags, mask, lengths = make_problem(
        num_labels, args.batch, args.length, ragged, args.seed + num_labels)
    peers = {"ours": ours}
    if before_cls is not None:
        peers["before"] = copy_into(ours, before_cls(num_labels))
    from torchcrf import CRF

    torchcrf = copy_into(ours, CRF(num_labels, batch_first=True),
                         ("transitions", "start_transitions", "end_transitions"))
    nll = {name: (lambda c=crf: c.nll(emissions, tags, mask)) for name, crf in peers.items()}
    nll["torchcrf"] = lambda: -torchcrf(emissions, tags, mask)
    marginals = {"ours": lambda: ours.marginals(emissions, mask)}
    if before_cls is not None:
        marginals["before"] = lambda: torch.autograd.grad(
            peers["before"].log_partition(emissions, mask).sum(), emissions)[0]
    if args.struct and struct_fits(args.batch, args.length, num_labels, args.struct_max_gb):
        nll["torchstruct"] = lambda: struct_nll(ours, emissions, tags, lengths)
        marginals["torchstruct"] = lambda: struct_marginals(ours, emissions, lengths)
    viterbi = {name: (lambda c=crf: c.viterbi(emissions.detach(), mask)[0])
               for name, crf in peers.items()}
    viterbi["torchcrf"] = lambda: torchcrf.decode(emissions.detach(), mask)
    return {"nll": nll, "marginals": marginals, "viterbi": viterbi}, (emissions, mask)


def check_agreement(tasks, mask):
    """All contestants give the same nll and the same marginals (on real tokens)."""
    values = {name: fn().detach() for name, fn in tasks["nll"].items()}
    for name, value in values.items():
        if not torch.allclose(value, values["ours"], rtol=1e-4):
            raise AssertionError(f"nll: {name} {value.item()} != ours {values['ours'].item()}")
    real = mask.unsqueeze(2)
    marginals = {name: fn().detach() * real for name, fn in tasks["marginals"].items()}
    for name, value in marginals.items():
        if not torch.allclose(value, marginals["ours"], atol=1e-4):
            raise AssertionError(f"marginals of {name} differ from ours")
    with torch.no_grad():
        paths = {name: fn() for name, fn in tasks["viterbi"].items()}
    lengths = mask.sum(1).tolist()
    expected = [row[:n] for row, n in zip(paths.pop("ours").tolist(), lengths)]
    for name, value in paths.items():
        got = value if isinstance(value, list) else [r[:n] for r, n in zip(value.tolist(), lengths)]
        if got != expected:
            raise AssertionError(f"Viterbi paths of {name} differ from ours")


def _time(fn, backward: bool) -> float:
    start = time.perf_counter()
    out = fn()
    if backward:
        out.backward()
    return time.perf_counter() - start


def time_task(runs, backward, args):
    """Median milliseconds per contestant, interleaved rounds rotating who goes first."""
    names = list(runs)
    first = {name: _time(runs[name], backward) for name in names}  # warm-up
    times = {name: [] for name in names}
    for r in range(args.repeats):
        for i in range(len(names)):
            name = names[(r + i) % len(names)]
            if r >= args.slow_repeats and first[name] > 0.1:
                continue  # calls over 100 ms: slow_repeats rounds are enough
            times[name].append(_time(runs[name], backward))
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def bench_config(num_labels, ragged, threads, args, before_cls):
    torch.set_num_threads(threads)
    tasks, (emissions, mask) = contestants(num_labels, ragged, args, before_cls)
    check_agreement(tasks, mask)
    row = {"L": num_labels, "mask": "ragged" if ragged else "full", "threads": threads}
    for task, runs in tasks.items():
        if task == "viterbi":
            with torch.no_grad():
                ms = time_task(runs, False, args)
        else:
            ms = time_task(runs, task == "nll", args)  # marginals of peers need autograd
        for name, value in ms.items():
            row[f"{task}_{name}_ms"] = value
            if name != "ours":
                row[f"{task}_{name}_ratio"] = value / ms["ours"]
    return row


def format_row(row) -> str:
    cells = [f"L={row['L']:<4} {row['mask']:<6} threads={row['threads']}"]
    for key, value in row.items():
        if key.endswith("_ms"):
            cells.append(f"{key[:-3]} {value:.2f} ms")
        elif key.endswith("_ratio"):
            cells.append(f"{key[:-6]} x{value:.1f}")
    return " | ".join(cells)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[17, 25, 401])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--masks", nargs="+", choices=["full", "ragged"], default=["full", "ragged"])
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--slow-repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--before", default=PREVIOUS_CRF,
                        help="git revision of an engine_plugin/crf.py to compare with (default: "
                             "the last one before the crf/ package), or none")
    parser.add_argument("--no-struct", dest="struct", action="store_false")
    parser.add_argument("--struct-max-gb", type=float, default=2.0)
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*arg_constraints.*")  # torch-struct
    try:
        before_cls = None if args.before == "none" else load_before(args.before)
    except LookupError as error:
        sys.exit(f"bench_crf.py: error: {error}")
    rows = []
    for threads in args.threads:
        for num_labels in args.labels:
            for mask in args.masks:
                rows.append(bench_config(num_labels, mask == "ragged", threads, args, before_cls))
                print(format_row(rows[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
