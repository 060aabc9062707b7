"""Times ``LinearChainCRF.viterbi`` against pytorch-crf's ``CRF.decode`` on the CPU.

Both decoders get identical random potentials: our transitions / start / end are copied into
torchcrf's ``transitions`` / ``start_transitions`` / ``end_transitions`` (both index
transitions as ``[from, to]``, i.e. from row to column). Before timing, every configuration
checks that both return IDENTICAL label paths. Then each decoder is warmed up (this is also
where a torch.compile'd step gets compiled; the first call is reported separately) and timed
over many repetitions, alternating ours / theirs (and which goes first) so that both see the
same machine load. Reported: median milliseconds per call and speed-up =
torchcrf median / ours median.

Decoding runs under ``torch.no_grad()`` by default (how decoding is normally called);
``--grad`` leaves autograd on, with parameters that require grad, for both decoders.
``--compile both`` (the default) times our eager decoder and the torch.compile'd one
(``viterbi(..., compile=True)``, which only compiles for L >= ``COMPILE_MIN_LABELS``, 80) in
the same interleaved loop; ``on`` / ``off`` time one of them.

    .venv/bin/python -m scripts.bench_viterbi --threads 1 --repeats 200 --json out.json
"""

import argparse
import json
import platform
import statistics
import time
from contextlib import nullcontext

import torch

from engine_plugin.crf import LinearChainCRF
from engine_plugin.crf.viterbi import COMPILE_MIN_LABELS


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_problem(num_labels, batch, length, ragged, seed):
    from torchcrf import CRF

    g = torch.Generator().manual_seed(seed)
    ours = LinearChainCRF(num_labels)
    theirs = CRF(num_labels, batch_first=True)
    with torch.no_grad():
        ours.transitions.copy_(torch.randn(num_labels, num_labels, generator=g))
        ours.start.copy_(torch.randn(num_labels, generator=g))
        ours.end.copy_(torch.randn(num_labels, generator=g))
        theirs.transitions.copy_(ours.transitions)
        theirs.start_transitions.copy_(ours.start)
        theirs.end_transitions.copy_(ours.end)
    emissions = torch.randn(batch, length, num_labels, generator=g)
    if ragged:
        lengths = torch.randint(1, length + 1, (batch,), generator=g)
        lengths[0] = length
    else:
        lengths = torch.full((batch,), length)
    mask = torch.arange(length)[None, :] < lengths[:, None]
    return ours, theirs, emissions, mask, lengths


def check_identical(ours, theirs, emissions, mask, lengths, compile):
    labels, energies = ours.viterbi(emissions, mask, compile=compile)
    ref = theirs.decode(emissions, mask)
    for b, n in enumerate(lengths.tolist()):
        got = labels[b, :n].tolist()
        if got != ref[b]:
            raise AssertionError(f"paths differ in sequence {b}: ours {got} torchcrf {ref[b]}")
        if labels[b, n:].any():
            raise AssertionError(f"padding of sequence {b} is not 0")
    # the energies we report are those of the returned paths
    assert torch.allclose(energies, ours.energy(emissions, labels, mask), rtol=1e-4, atol=1e-3)


def _time_once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_one(num_labels, ragged, args):
    ours, theirs, emissions, mask, lengths = make_problem(
        num_labels, args.batch, args.length, ragged, seed=args.seed + num_labels
    )
    variants = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    runs = {
        ("ours_compiled" if c else "ours"): (lambda c=c: ours.viterbi(emissions, mask, compile=c))
        for c in variants
    }
    runs["torchcrf"] = lambda: theirs.decode(emissions, mask)
    names = list(runs)
    ctx = nullcontext if args.grad else torch.no_grad
    first, times = {}, {name: [] for name in names}
    with ctx():
        for name in names:  # the first call includes any compilation (first L >= 80 only)
            first[name] = _time_once(runs[name])
        for c in variants:
            check_identical(ours, theirs, emissions, mask, lengths, c)
        for _ in range(args.warmup):
            for name in names:
                runs[name]()
        for r in range(args.repeats):
            # interleave, rotating which decoder goes first
            for i in range(len(names)):
                name = names[(r + i) % len(names)]
                times[name].append(_time_once(runs[name]))
    row = {"L": num_labels, "mask": "ragged" if ragged else "full"}
    for name in names:
        row[f"{name}_ms"] = 1e3 * statistics.median(times[name])
        row[f"{name}_iqr_ms"] = [1e3 * q for q in statistics.quantiles(times[name], n=4)[::2]]
        row[f"{name}_first_call_ms"] = 1e3 * first[name]
    for name in names[:-1]:
        key = "speedup" if name == "ours" else "speedup_compiled"
        row[key] = row["torchcrf_ms"] / row[f"{name}_ms"]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[17, 25, 400])
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--length", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grad", action="store_true", help="decode with autograd enabled")
    parser.add_argument(
        "--compile", choices=["both", "off", "on"], default="both",
        help="time our eager decoder, the torch.compile'd one, or both (default)",
    )
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    rows = []
    for num_labels in args.labels:
        for ragged in (False, True):
            rows.append(bench_one(num_labels, ragged, args))

    meta = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": _cpu_model(),
        "nproc": __import__("os").cpu_count(),
        "batch": args.batch,
        "length": args.length,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "grad": args.grad,
        "compile": args.compile,
    }
    print(
        f"B={args.batch} T={args.length} threads={meta['threads']} torch={meta['torch']} "
        f"cpu={meta['cpu']} grad={'on' if args.grad else 'off'}; "
        f"median of {args.repeats} interleaved calls\n"
    )
    eager, compiled = args.compile in ("both", "off"), args.compile in ("both", "on")
    header = ["L", "mask"]
    if eager:
        header += ["ours ms", "pytorch-crf ms", "speed-up"]
    if compiled:
        if not eager:
            header += ["pytorch-crf ms"]
        header += ["ours compiled ms", "speed-up compiled"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if h != "mask" else ":---" for h in header) + "|")
    for r in rows:
        cells = [str(r["L"]), r["mask"]]
        if eager:
            cells += [f"{r['ours_ms']:.3f}", f"{r['torchcrf_ms']:.3f}", f"{r['speedup']:.2f}x"]
        if compiled:
            if not eager:
                cells += [f"{r['torchcrf_ms']:.3f}"]
            cells += [f"{r['ours_compiled_ms']:.3f}", f"{r['speedup_compiled']:.2f}x"]
        print("| " + " | ".join(cells) + " |")
    if compiled:
        firsts = [r["ours_compiled_first_call_ms"] for r in rows if r["L"] >= COMPILE_MIN_LABELS]
        if firsts:
            print(f"\nfirst compiled call (includes torch.compile): {max(firsts) / 1e3:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
