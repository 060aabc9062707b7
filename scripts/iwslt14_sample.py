#!/usr/bin/env python
"""The training pairs of the shared IWSLT'14 sample (``../shared/data/iwslt14_de_en``), without
repeats, as a parallel corpus.

    python scripts/iwslt14_sample.py SAMPLES_DIR OUT_DIR

SAMPLES_DIR (``train_samples_bpe10k/``) holds ``sample_a.de`` / ``sample_a.en`` (line-aligned)
and ``sample_b.de-en.tsv`` (``de<TAB>en`` a line); the two samples overlap. Writes
``OUT_DIR/train.de`` and ``OUT_DIR/train.en``: every distinct pair, in the order first seen
(sample a, then sample b).
"""

import argparse
import os
import sys
from typing import Iterable, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from scripts.script_errors import exit_status  # noqa: E402

Pair = Tuple[str, str]


def read_lines(path: str) -> List[str]:
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def read_pairs(samples: str) -> List[Pair]:
    """Sample a's pairs, then sample b's; raises ValueError on a malformed file."""
    de = read_lines(os.path.join(samples, "sample_a.de"))
    en = read_lines(os.path.join(samples, "sample_a.en"))
    if len(de) != len(en):
        raise ValueError(f"{samples}: sample_a.de has {len(de)} lines, sample_a.en {len(en)}")
    pairs = list(zip(de, en))
    tsv = os.path.join(samples, "sample_b.de-en.tsv")
    for number, line in enumerate(read_lines(tsv), 1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise ValueError(f"{tsv}:{number}: {len(fields)} tab-separated fields, not 2")
        pairs.append((fields[0], fields[1]))
    return pairs


def distinct(pairs: Iterable[Pair]) -> List[Pair]:
    """The pairs without repeats, in the order first seen."""
    return list(dict.fromkeys(pairs))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", help="the train_samples_bpe10k directory")
    parser.add_argument("out_dir")
    args = parser.parse_args(argv)
    return exit_status("iwslt14_sample.py", lambda: write_corpus(args.samples, args.out_dir))


def write_corpus(samples: str, out_dir: str) -> None:
    """OUT_DIR/train.de and train.en: the distinct pairs of SAMPLES_DIR (read before any
    file is written)."""
    pairs = distinct(read_pairs(samples))
    os.makedirs(out_dir, exist_ok=True)
    for side, lang in enumerate(("de", "en")):
        with open(os.path.join(out_dir, f"train.{lang}"), "w", encoding="utf-8") as f:
            f.writelines(pair[side] + "\n" for pair in pairs)
    print(f"   {len(pairs)} distinct training pairs from the shared samples")


if __name__ == "__main__":
    sys.exit(main())
