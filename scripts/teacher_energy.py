#!/usr/bin/env python
"""Mean teacher energy of translations: the AR teacher's NLL of each hypothesis given its
source (nats, summed over the tokens and the final EOS), averaged over sentences.

This is ENGINE's energy ``E(x, y) = -log p_teacher(y | x)`` on discrete outputs, the
number the paper reports next to BLEU (Tables 2 and 5), computed by
:meth:`engine_plugin.energies.translation.TranslationEnergy.discrete_energy` (equal to
stock ``fairseq-generate --score-reference`` on the same tokens).

    python scripts/teacher_energy.py --teacher T.pt [--teacher T2.pt] --source test.bpe.de \\
        [--bpe-codes codes [--bpe-vocab vocab.en --bpe-threshold 50]] GEN_OUT_OR_HYPS ...

Each input is either a ``fairseq-generate`` output (its ``H-<id>`` lines; ids index
``--source``) or a plain file of hypotheses, one per line of ``--source``. Sources must be
in the teacher's subword units (the binarised-test text, BPE applied). Hypotheses printed
with ``--remove-bpe`` are words: pass ``--bpe-codes`` (and the vocabulary filter used for
the training data) to segment them again the way the teacher's data was segmented; the
energy is then that of the output *text* under the teacher's own segmentation.

Prints a tab-separated line per input: file, sentences, then the mean energy under each
teacher (in ``--teacher`` order).
"""

import argparse
import os
import re
import sys
from typing import List, Sequence, Tuple

import torch

import engine_plugin  # noqa: F401  (loads stock checkpoints under torch >= 2.6)
from engine_plugin.energies.translation import TranslationEnergy

HYPOTHESIS = re.compile(r"^H-(\d+)\t[^\t]*\t?(.*)$")


def read_hypotheses(path: str, num_sources: int) -> List[Tuple[int, str]]:
    """``[(source index, hypothesis)]`` from a fairseq-generate output or a plain file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    hypotheses = [(int(m.group(1)), m.group(2)) for m in map(HYPOTHESIS.match, lines) if m]
    if hypotheses:
        seen = [i for i, _ in hypotheses]
        if len(set(seen)) != len(seen):
            raise ValueError(f"{path}: several H- lines per sentence (use --nbest 1)")
        if max(seen) >= num_sources:
            raise ValueError(f"{path}: sentence id {max(seen)} but --source has {num_sources} lines")
        return sorted(hypotheses)
    if any(line.startswith(("S-", "T-", "D-", "P-")) for line in lines):
        raise ValueError(f"{path}: a fairseq-generate output without H- lines")
    if len(lines) != num_sources:
        raise ValueError(f"{path}: {len(lines)} hypotheses for {num_sources} source lines")
    return list(enumerate(lines))


def build_segmenter(codes: str, vocab: str, threshold: int):
    """A function word string -> BPE string (subword-nmt), or the identity."""
    if not codes:
        return lambda line: line
    from subword_nmt.apply_bpe import BPE, read_vocabulary

    vocabulary = None
    if vocab:
        with open(vocab, encoding="utf-8") as f:
            vocabulary = read_vocabulary(f, threshold)
    with open(codes, encoding="utf-8") as f:
        # fairseq prints an unknown output token as <unk> (<<unk>> when escaped): keep it whole
        bpe = BPE(f, vocab=vocabulary, glossaries=["<+unk>+"])
    return lambda line: bpe.process_line(line).strip()


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """``--source`` and the BPE options that segment word outputs again (:func:`segmenter_of`)."""
    parser.add_argument("--source", required=True, help="sources, in the teacher's subwords")
    parser.add_argument("--bpe-codes", default="", help="re-segment word outputs with these codes")
    parser.add_argument("--bpe-vocab", default="", help="subword-nmt vocabulary filter (target side)")
    parser.add_argument("--bpe-threshold", type=int, default=0)


def segmenter_of(args: argparse.Namespace):
    """:func:`build_segmenter` of the options of :func:`add_source_options`."""
    return build_segmenter(args.bpe_codes, args.bpe_vocab, args.bpe_threshold)


def pad_rows(rows: Sequence[torch.Tensor], pad: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, max len) tokens and (B, max len) bool mask of real positions."""
    width = max(1, max(len(r) for r in rows))
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = row
        mask[i, : len(row)] = True
    return tokens, mask


@torch.no_grad()
def token_energies(energy: TranslationEnergy, sources: Sequence[str],
                   hypotheses: Sequence[str], batch_size: int) -> List[torch.Tensor]:
    """Per sentence, the (n_i + 1,) teacher energies (nats) of the n_i tokens of
    ``hypotheses[i]`` given ``sources[i]``, then that of the final EOS."""
    src_dict, tgt_dict = energy.src_dict, energy.tgt_dict
    out: List[torch.Tensor] = [torch.empty(0)] * len(sources)
    order = sorted(range(len(sources)), key=lambda i: len(sources[i].split()))
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        src = [src_dict.encode_line(sources[i], add_if_not_exist=False, append_eos=True).long()
               for i in batch]
        hyp = [tgt_dict.encode_line(hypotheses[i], add_if_not_exist=False,
                                    append_eos=False).long() for i in batch]
        src_tokens, src_mask = pad_rows(src, src_dict.pad())
        y, mask = pad_rows(hyp, tgt_dict.pad())
        context = energy.encode(src_tokens, src_mask.sum(1))
        values = energy.token_energies(context, y, mask).double()
        for row, i in enumerate(batch):
            out[i] = values[row, : len(hyp[row]) + 1]
    return out


def sentence_energies(energy: TranslationEnergy, sources: Sequence[str],
                      hypotheses: Sequence[str], batch_size: int) -> torch.Tensor:
    """(N,) teacher energies (nats) of ``hypotheses[i]`` given ``sources[i]``."""
    return torch.stack([v.sum() for v in token_energies(energy, sources, hypotheses,
                                                        batch_size)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", action="append", required=True,
                        help="teacher checkpoint (repeat for several teachers)")
    add_source_options(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("inputs", nargs="+", help="fairseq-generate outputs or hypothesis files")
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    with open(args.source, encoding="utf-8") as f:
        all_sources = f.read().splitlines()
    segment = segmenter_of(args)
    energies = [TranslationEnergy.from_checkpoint(path) for path in args.teacher]
    for path in args.inputs:
        pairs = read_hypotheses(path, len(all_sources))
        sources = [all_sources[i] for i, _ in pairs]
        hypotheses = [segment(h) for _, h in pairs]
        means = [float(sentence_energies(e, sources, hypotheses, args.batch_size).mean())
                 for e in energies]
        print("\t".join([path, str(len(pairs))] + [f"{m:.3f}" for m in means]), flush=True)


if __name__ == "__main__":
    sys.exit(main())
