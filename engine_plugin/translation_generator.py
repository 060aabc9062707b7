"""Length selection for non-autoregressive decoding with fairseq's iterative refinement.

fairseq's NAT models decode the ``K`` most likely target lengths with
``--iter-decode-with-beam K`` and keep the candidate with the highest average token
log-probability under the NAT model itself. ENGINE (§4.5) does the same; this module adds

- ``--length-select energy``: keep the candidate with the lowest energy per token under the
  frozen autoregressive teacher (``E / (n + 1)``, EOS counted, the normalisation of
  ``fairseq-generate --score-reference``). Stock ``--iter-decode-with-external-reranker``
  meant to do this but does not run on fairseq 0.12 (it reads encoder outputs as a named
  tuple) and would feed the teacher NAT-layout sources with a BOS it never saw.
- ``--oracle-length``: decode with the reference length (the paper's "oracle lengths").
- in every decode, the share of filled positions whose argmax is a special symbol
  (``<pad>``, ``<unk>``, ``<s>``, an early ``</s>``): the stock generator strips them from
  the output, so they would show only as shorter outputs. It is appended to the score line.

Layout: a NAT hypothesis is ``[bos y_1 .. y_n eos]``; the teacher scores ``y`` followed by
EOS (:meth:`TranslationEnergy.frame_tokens`), its source without the NAT BOS.
"""

from typing import Optional, Tuple

import torch
from fairseq.data import data_utils
from fairseq.iterative_refinement_generator import IterativeRefinementGenerator
from torch import Tensor

from engine_plugin.energies.translation import TranslationEnergy
from engine_plugin.report import start_report


def strip_nat_boundaries(tokens: Tensor, pad: int) -> Tuple[Tensor, Tensor]:
    """NAT-layout rows ``[bos y_1 .. y_n eos]`` (B, T), right-padded -> ``(y, mask)``.

    Returns:
        ``y`` (B, T-2): position ``t`` of ``y`` is position ``t + 1`` of ``tokens``, so
        logits (B, T, V) of a NAT decoder are sliced the same way (``[:, 1:-1]``); values
        beyond ``n_b`` are EOS or padding. ``mask`` (B, T-2) bool: True on the first ``n_b``.
    """
    lengths = tokens.ne(pad).sum(1) - 2
    if (lengths < 0).any():
        raise ValueError("NAT rows need a BOS and an EOS: [bos y_1 .. y_n eos]")
    positions = torch.arange(tokens.size(1) - 2, device=tokens.device)
    return tokens[:, 1:-1], positions[None, :] < lengths[:, None]


class _OracleLength:
    """A NAT model that starts decoding from the reference lengths of ``target``.

    ``target`` (B, T) is the batch's ``[bos y eos]`` references; everything but
    ``initialize_output_tokens`` is the wrapped model's.
    """

    def __init__(self, model, target: Tensor):
        self._model = model
        self._target = target

    def __getattr__(self, name):
        return getattr(self._model, name)

    def initialize_output_tokens(self, encoder_out, src_tokens):
        model, target = self._model, self._target
        start = model.initialize_output_tokens(encoder_out, src_tokens)
        boundary = target.eq(model.bos) | target.eq(model.eos) | target.eq(model.pad)
        tokens = target.masked_fill(~boundary, model.unk)
        return start._replace(output_tokens=tokens,
                              output_scores=start.output_scores.new_zeros(tokens.shape))


class _CountingSymbols:
    """A NAT model whose decoder steps also count the special symbols they write.

    At each ``forward_decoder`` call the positions that hold ``<unk>`` (the masked slots of
    ``[bos y eos]``) are filled by the model; the count is over those positions.
    """

    def __init__(self, model, report):
        self._model = model
        self._report = report

    def __getattr__(self, name):
        return getattr(self._model, name)

    def forward_decoder(self, decoder_out, encoder_out, **kwargs):
        model = self._model
        slots = decoder_out.output_tokens.eq(model.unk)
        out = model.forward_decoder(decoder_out, encoder_out, **kwargs)
        written = out.output_tokens[slots]
        names = {"pad": model.pad, "unk": model.unk, "bos": model.bos, "early_eos": model.eos}
        self._report.add_symbols({n: int(written.eq(i).sum()) for n, i in names.items()},
                                 int(slots.sum()))
        return out


class LengthSelectingGenerator(IterativeRefinementGenerator):
    """fairseq's iterative refinement with oracle lengths and/or energy length selection.

    Build it with :meth:`extending` from the stock generator that ``translation_lev`` makes
    from the ``--iter-decode-*`` options. With an energy, the stock reranking hook does the
    selection: :meth:`generate` passes the teacher as the last model (where stock fairseq
    expects its external reranker) and :meth:`rerank` sets each candidate's ``score`` to
    ``-E / (n + 1)``, which the stock code then maximises over the length beam. The printed
    ``H-`` score is therefore the teacher's average log-probability (base 2), and each
    hypothesis also carries its ``energy`` (nats).
    """

    energy: Optional[TranslationEnergy] = None
    oracle_length: bool = False
    report = None

    @classmethod
    def extending(
        cls,
        generator: IterativeRefinementGenerator,
        energy: Optional[TranslationEnergy] = None,
        oracle_length: bool = False,
    ) -> "LengthSelectingGenerator":
        """A generator with ``generator``'s settings plus the given length handling.

        Args:
            generator: the stock generator (its ``beam_size`` is the length beam ``K``).
            energy: select among the ``K`` lengths by teacher energy per token (needs
                ``K > 1``); None keeps fairseq's average log-probability.
            oracle_length: decode the reference lengths only (the batch needs ``target``;
                no length beam).
        """
        if oracle_length and generator.beam_size > 1:
            raise ValueError(
                "--oracle-length decodes the reference length only: drop "
                "--iter-decode-with-beam (or --length-select energy)"
            )
        if energy is not None:
            if generator.reranking:
                raise ValueError(
                    "--length-select energy replaces --iter-decode-with-external-reranker; "
                    "use one of them"
                )
            if generator.beam_size < 2:
                raise ValueError(
                    "--length-select energy chooses among length candidates: pass "
                    "--iter-decode-with-beam K with K > 1"
                )
        selecting = cls.__new__(cls)
        selecting.__dict__.update(vars(generator))
        selecting.energy = energy
        selecting.oracle_length = oracle_length
        selecting.reranking = energy is not None
        selecting.report = start_report("nat")
        return selecting

    @torch.no_grad()
    def generate(self, models, sample, prefix_tokens=None, constraints=None):
        if self.oracle_length:
            if sample.get("target") is None:
                raise ValueError("--oracle-length decodes with the reference lengths; this "
                                 "batch has no target")
            models = [_OracleLength(models[0], sample["target"]), *models[1:]]
        models = [_CountingSymbols(models[0], self.report), *models[1:]]
        if self.energy is not None:
            models = [*models, self.energy.model]
        return super().generate(models, sample, prefix_tokens, constraints)

    def rerank(self, reranker, finalized, encoder_input, beam_size):
        """Scores every candidate by ``-E / (n + 1)`` under :attr:`energy`.

        ``finalized`` holds ``B * K`` one-hypothesis lists, candidate ``j`` of sentence
        ``b`` at ``b * K + j``; ``encoder_input`` is ``[src_tokens, src_lengths]`` (B rows).
        """
        src_tokens, src_lengths = encoder_input
        context = self.energy.condition({
            "src_tokens": src_tokens.repeat_interleave(beam_size, 0),
            "src_lengths": src_lengths.repeat_interleave(beam_size, 0),
        })
        tokens = data_utils.collate_tokens([f[0]["tokens"] for f in finalized], self.pad)
        y, mask = strip_nat_boundaries(tokens, self.pad)
        energies = self.energy.discrete_energy(context, y, mask)
        per_token = energies / (mask.sum(1) + 1)
        for hypos, energy, score in zip(finalized, energies.tolist(), (-per_token).tolist()):
            hypos[0]["energy"] = energy
            hypos[0]["score"] = score
        return finalized
