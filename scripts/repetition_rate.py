#!/usr/bin/env python
"""How often a translation repeats its previous word: the classic failure of one-pass
non-autoregressive decoding ("a dog dog runs runs"), which ENGINE's energy should remove.

    python scripts/repetition_rate.py GEN_OUT [GEN_OUT ...]

GEN_OUT: fairseq-generate outputs (``H-`` lines, BPE removed). Prints, per file, the number
of hypotheses, their mean length in words and the percentage of words identical to the
word before them, tab-separated.
"""

import argparse
from typing import List, Tuple


def hypotheses(path: str) -> List[List[str]]:
    """The words of every ``H-<id>\\t<score>\\t<text>`` line of a fairseq-generate output."""
    hyps = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("H-"):
                fields = line.rstrip("\n").split("\t")
                if len(fields) != 3:
                    raise ValueError(f"{path}: malformed hypothesis line {line.strip()!r}")
                hyps.append(fields[2].split())
    if not hyps:
        raise ValueError(f"{path}: no H- lines (is it a fairseq-generate output?)")
    return hyps


def repetition_rate(hyps: List[List[str]]) -> Tuple[float, float]:
    """(mean words per hypothesis, % of words equal to their predecessor)."""
    words = sum(len(h) for h in hyps)
    repeats = sum(a == b for h in hyps for a, b in zip(h, h[1:]))
    return words / len(hyps), 100.0 * repeats / max(words, 1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outputs", nargs="+")
    args = parser.parse_args(argv)
    print("output\thypotheses\tmean_words\trepeated_words_%")
    for path in args.outputs:
        hyps = hypotheses(path)
        length, rate = repetition_rate(hyps)
        print(f"{path}\t{len(hyps)}\t{length:.2f}\t{rate:.2f}")


if __name__ == "__main__":
    main()
