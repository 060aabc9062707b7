#!/usr/bin/env python
"""Where the teacher's energy of a model's translations goes, against the teacher's own beam.

An inference network trained on the teacher's energy ``E(x, y) = -log p_teacher(y | x)`` can
*exploit* it: find outputs the teacher scores as well as its own beam search output, or
better, that are worse translations. This compares, sentence by sentence, a model's output
with the teacher's beam output of the same source:

- **below the beam**: the share of sentences whose output has a lower energy than the beam
  output, and the share that does so while its sentence BLEU against the reference is lower
  (the teacher prefers a worse translation: an exploit of the energy, not a search failure);
- **token classes**: for both outputs, each class's share of the output tokens and the mean
  energy of its tokens (nats): commas, a repeat of the previous token, pieces of a word split
  into subwords, other tokens, and the final end of sentence;
- **same length**: on the sentences whose two outputs have equally many tokens (the energy
  is a sum over tokens), the mean energy of each and the share where the output is lower;
  in ``--json`` also the mean energy at each position.

    python scripts/teacher_energy_breakdown.py --teacher T.pt --source test.bpe.de \\
        [--bpe-codes codes --bpe-vocab vocab.en --bpe-threshold 50] \\
        --beam TEACHER_BEAM_GEN MODEL_GEN [--json out.json] [--examples 3]

Both outputs are ``fairseq-generate`` outputs (their ``H-`` lines; the reference is the
model output's ``T-`` lines) on the sentences of ``--source``, segmented again with the BPE
options when printed with ``--remove-bpe`` (see ``scripts/teacher_energy.py``).
"""

import argparse
import json
import os
import re
import sys
from typing import Dict, List, Sequence

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from engine_plugin.energies.translation import TranslationEnergy  # noqa: E402
from scripts.script_errors import exit_status  # noqa: E402
from scripts.teacher_energy import (add_source_options, read_hypotheses, segmenter_of,  # noqa: E402
                                    token_energies)

CLASSES = ("comma", "repeat", "subword", "other", "end")
REFERENCE = re.compile(r"^T-(\d+)\t(.*)$")
EXAMPLE_TOKENS = 60  # an example shows at most this many tokens


def token_classes(tokens: Sequence[str]) -> List[str]:
    """The class of each token of a BPE sentence, then ``end`` for its final EOS."""
    classes = []
    for i, token in enumerate(tokens):
        if token == ",":
            classes.append("comma")
        elif i > 0 and token == tokens[i - 1]:
            classes.append("repeat")
        elif token.endswith("@@") or (i > 0 and tokens[i - 1].endswith("@@")):
            classes.append("subword")
        else:
            classes.append("other")
    return classes + ["end"]


def class_table(outputs: Sequence[str], energies: Sequence[List[float]]) -> Dict[str, Dict]:
    """Per class: ``share`` of all tokens (EOS included) and ``energy``, their mean energy
    (None for a class without tokens)."""
    totals = {name: [0, 0.0] for name in CLASSES}
    for output, values in zip(outputs, energies):
        for name, value in zip(token_classes(output.split()), values):
            totals[name][0] += 1
            totals[name][1] += value
    count = sum(n for n, _ in totals.values())
    return {name: {"share": n / count, "energy": total / n if n else None}
            for name, (n, total) in totals.items()}


def sentence_bleu(hypothesis: str, reference: str) -> float:
    import sacrebleu

    return sacrebleu.sentence_bleu(hypothesis, [reference]).score


def compare(model: Dict, beam: Dict) -> Dict:
    """The summary of a model's outputs against the beam's (both as built by :func:`scored`)."""
    n = len(model["energies"])
    below = [m < b for m, b in zip(model["totals"], beam["totals"])]
    worse = [m < b for m, b in zip(model["bleu"], beam["bleu"])]
    same = [i for i in range(n) if len(model["energies"][i]) == len(beam["energies"][i])]
    return {
        "sentences": n,
        "energy": {"model": sum(model["totals"]) / n, "beam": sum(beam["totals"]) / n},
        "below_beam": sum(below) / n,
        "below_beam_and_worse": sum(b and w for b, w in zip(below, worse)) / n,
        "classes": {"model": class_table(model["outputs"], model["energies"]),
                    "beam": class_table(beam["outputs"], beam["energies"])},
        "same_length": same_length(model, beam, same),
    }


def same_length(model: Dict, beam: Dict, indices: Sequence[int]) -> Dict:
    """Mean energies, the share below the beam and per-position means on INDICES."""
    if not indices:
        return {"sentences": 0}
    pick = {name: [side["energies"][i] for i in indices] for name, side in
            (("model", model), ("beam", beam))}
    width = max(len(v) for v in pick["model"])
    positions = {name: [sum(v[t] for v in rows if t < len(v)) / sum(t < len(v) for v in rows)
                        for t in range(width)] for name, rows in pick.items()}
    return {"sentences": len(indices),
            "energy": {name: sum(side["totals"][i] for i in indices) / len(indices)
                       for name, side in (("model", model), ("beam", beam))},
            "below_beam": sum(model["totals"][i] < beam["totals"][i] for i in indices)
            / len(indices),
            "positions": positions}


def scored(path: str, energy: TranslationEnergy, sources: List[str], segment,
           references: Dict[int, str]) -> Dict:
    """A generate output's BPE outputs, per-token energies, their sums (``totals``) and
    sentence BLEU, by sentence."""
    pairs = read_hypotheses(path, len(sources))
    if [i for i, _ in pairs] != sorted(references):
        raise ValueError(f"{path}: not the sentences of the model output")
    outputs = [segment(h) for _, h in pairs]
    energies = [v.tolist() for v in token_energies(
        energy, [sources[i] for i, _ in pairs], outputs, batch_size=64)]
    return {"outputs": outputs, "energies": energies, "totals": [sum(v) for v in energies],
            "bleu": [sentence_bleu(h, references[i]) for i, h in pairs]}


def read_references(path: str) -> Dict[int, str]:
    """``{sentence id: reference}`` from a fairseq-generate output's ``T-`` lines."""
    with open(path, encoding="utf-8") as f:
        found = {int(m.group(1)): m.group(2) for m in map(REFERENCE.match, f) if m}
    if not found:
        raise ValueError(f"{path}: no T- (reference) lines; generate with the references")
    return found


def _nats(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def report(summary: Dict) -> str:
    """Markdown: the sentence-level shares, then the token-class table."""
    same = summary["same_length"]
    lines = [f"{summary['sentences']} sentences; mean energy {summary['energy']['model']:.2f} "
             f"(beam {summary['energy']['beam']:.2f}); below the beam "
             f"{100 * summary['below_beam']:.1f}%, below the beam with a lower sentence BLEU "
             f"{100 * summary['below_beam_and_worse']:.1f}%"]
    if same["sentences"]:
        lines.append(f"same length: {same['sentences']} sentences, mean energy "
                     f"{same['energy']['model']:.2f} (beam {same['energy']['beam']:.2f}), "
                     f"below the beam {100 * same['below_beam']:.1f}%")
    lines += ["", "| tokens | share | energy/token | beam share | beam energy/token |",
              "|---|---|---|---|---|"]
    for name in CLASSES:
        m, b = summary["classes"]["model"][name], summary["classes"]["beam"][name]
        lines.append(f"| {name} | {100 * m['share']:.1f}% | {_nats(m['energy'])} | "
                     f"{100 * b['share']:.1f}% | {_nats(b['energy'])} |")
    return "\n".join(lines)


def examples(model: Dict, beam: Dict, count: int) -> str:
    """The COUNT sentences most below the beam in energy with a lower sentence BLEU, each
    token (the first EXAMPLE_TOKENS) with its energy."""
    gaps = [(b - m, i) for i, (m, b) in enumerate(zip(model["totals"], beam["totals"]))
            if m < b and model["bleu"][i] < beam["bleu"][i]]
    lines = []
    for _, i in sorted(gaps, reverse=True)[:count]:
        for name, side in (("model", model), ("beam", beam)):
            tokens = side["outputs"][i].split() + ["</s>"]
            shown = [f"{t}:{e:.1f}" for t, e in zip(tokens, side["energies"][i])]
            if len(shown) > EXAMPLE_TOKENS:
                shown = shown[:EXAMPLE_TOKENS] + [f"... ({len(tokens)} tokens)"]
            lines.append(f"{name} (energy {side['totals'][i]:.2f}, BLEU "
                         f"{side['bleu'][i]:.1f}): " + " ".join(shown))
        lines.append("")
    return "\n".join(lines)


def analyse(args) -> None:
    """Scores both outputs, prints the report (and examples), writes the JSON."""
    with open(args.source, encoding="utf-8") as f:
        sources = f.read().splitlines()
    segment = segmenter_of(args)
    energy = TranslationEnergy.from_checkpoint(args.teacher)
    references = read_references(args.model)
    model, beam = (scored(path, energy, sources, segment, references)
                   for path in (args.model, args.beam))
    summary = compare(model, beam)
    print(report(summary))
    if args.examples:
        print("\n" + examples(model, beam, args.examples))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(summary, out, indent=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", required=True, help="the teacher checkpoint")
    add_source_options(parser)
    parser.add_argument("--beam", required=True, help="the teacher's beam-search generate output")
    parser.add_argument("--json", help="also write the summary, positions included, here")
    parser.add_argument("--examples", type=int, default=0, help="print this many exploits")
    parser.add_argument("model", help="the model's generate output")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    return exit_status("teacher_energy_breakdown.py", lambda: analyse(args))


if __name__ == "__main__":
    sys.exit(main())
