#!/usr/bin/env python
"""What one ``fairseq-generate`` translation output looks like besides its BLEU: the signs of
an infnet exploiting its energy (runs of commas, words cut into subword pieces, special
symbols) and the length against the references.

    python scripts/translation_outputs.py GEN_OUT [--autoregressive]

prints ``length_ratio comma_share bpe_per_word special_share`` (tab-separated) of GEN_OUT,
fairseq-generate's stdout with ``--remove-bpe --scoring sacrebleu``:

- ``length_ratio``: sacrebleu's hypothesis / reference length of the score line;
- ``comma_share``: the share (%) of output words that are ``,``;
- ``bpe_per_word``: BPE tokens per output word: the positions of each ``P-`` line (one score
  per target token, plus ``</s>``, plus ``<s>`` for a non-autoregressive output) over the
  words of its ``H-`` line;
- ``special_share``: the share (%) of NAT output positions whose argmax was ``<pad>``,
  ``<unk>``, ``<s>`` or an early ``</s>`` (the plugin's ``special_*`` fields of the score
  line); ``-`` for the stock generator's outputs, which have none.

A statistic the output lacks (no score line, no hypotheses) is ``-``.
"""

import argparse
import os
import re
import sys
from typing import Dict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine_plugin.report import parse_score_line  # noqa: E402
from scripts.script_errors import exit_status  # noqa: E402

STATISTICS = ["length_ratio", "comma_share", "bpe_per_word", "special_share"]
SPECIAL_FIELDS = ("special_pad", "special_unk", "special_bos", "special_early_eos")
RATIO = re.compile(r"ratio = ([\d.]+)")


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f}" if whole else "-"


def _score_line_statistics(line: str) -> Dict[str, str]:
    ratio = RATIO.search(line)
    fields = parse_score_line(line).fields
    special = ([float(fields[k]) for k in SPECIAL_FIELDS if k in fields]
               if "special_pad" in fields else [])
    return {"length_ratio": ratio.group(1) if ratio else "-",
            "special_share": f"{sum(special):.2f}" if special else "-"}


def output_statistics(path: str, autoregressive: bool = False) -> Dict[str, str]:
    """{statistic: value as printed} of the generate output ``path`` (see the module
    docstring); ``autoregressive``: its ``P-`` lines have no ``<s>`` position."""
    extra_positions = 1 if autoregressive else 2
    words = commas = tokens = 0
    stats = {name: "-" for name in STATISTICS}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("H-"):
                hypothesis = line.rstrip("\n").split("\t")[2:] or [""]
                output_words = hypothesis[0].split()
                words += len(output_words)
                commas += output_words.count(",")
            elif line.startswith("P-"):
                tokens += len(line.split("\t")[1].split()) - extra_positions
            elif line.startswith("Generate "):
                stats.update(_score_line_statistics(line))
    stats["comma_share"] = _share(commas, words)
    stats["bpe_per_word"] = f"{tokens / words:.3f}" if words else "-"
    return stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="fairseq-generate's stdout")
    parser.add_argument("--autoregressive", action="store_true",
                        help="an autoregressive (stock translation task) output")
    args = parser.parse_args(argv)

    def show():
        stats = output_statistics(args.output, args.autoregressive)
        print("\t".join(STATISTICS))
        print("\t".join(stats[name] for name in STATISTICS))
    return exit_status("translation_outputs.py", show)


if __name__ == "__main__":
    sys.exit(main())
