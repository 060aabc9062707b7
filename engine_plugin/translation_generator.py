"""Length selection and energy minimisation for non-autoregressive decoding with fairseq's
iterative refinement.

fairseq's NAT models decode the ``K`` most likely target lengths with
``--iter-decode-with-beam K`` and keep the candidate with the highest average token
log-probability under the NAT model itself. ENGINE (§4.5) does the same; this module adds

- ``--length-select energy``: keep the candidate with the lowest energy per token under the
  frozen autoregressive teacher (``E / (n + 1)``, EOS counted, the normalisation of
  ``fairseq-generate --score-reference``). Stock ``--iter-decode-with-external-reranker``
  meant to do this but does not run on fairseq 0.12 (it reads encoder outputs as a named
  tuple) and would feed the teacher NAT-layout sources with a BOS it never saw.
- ``--oracle-length``: decode with the reference length (the paper's "oracle lengths").
- ``--inference gd|warmstart|tailored`` (:class:`SolvingModel`): at the last refinement step
  the NAT decoder's logits on the current rows ``[bos y_1 .. y_n eos]`` (R, n + 2, V) are
  handed, at the positions of ``y`` (R, n, V), to a registered solver
  (``engine_plugin/solvers``) that minimises the teacher energy over all of ``y``; its argmax
  is written into the slots the NAT would fill (the ``<unk>`` positions: all of ``y`` with
  ``--iter-decode-max-iter 0``; after refinement iterations the earlier iterations' tokens
  stay, as in the NAT's own last step) and its ``log_softmax`` into the output scores. ``gd`` uses the NAT
  for the lengths only (start: ``--gd-init``), ``warmstart`` starts from the NAT's logits,
  ``tailored`` decodes with a copy of the NAT fine-tuned on the batch's energy. ``R = B * K``
  rows with a length beam; each row's source is tracked through the generator's reorders.
  The score line then also gives the mean relaxed and discrete teacher energy of the chosen
  outputs and the sentences per second of the decode.
- in every decode, the share of filled positions whose argmax is a special symbol
  (``<pad>``, ``<unk>``, ``<s>``, an early ``</s>``): the stock generator strips them from
  the output, so they would show only as shorter outputs. It is appended to the score line.

Layout: a NAT hypothesis is ``[bos y_1 .. y_n eos]``; the teacher scores ``y`` followed by
EOS (:meth:`TranslationEnergy.frame_tokens`), its source without the NAT BOS.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from fairseq.data import data_utils
from fairseq.iterative_refinement_generator import IterativeRefinementGenerator
from torch import Tensor

from engine_plugin.energies.translation import TranslationEnergy
from engine_plugin.report import start_report
from engine_plugin.solvers.checks import DivergedError
from engine_plugin.solvers.registry import Problem


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
    ``[bos y eos]``) are filled by the model; the count is over those positions, as filled.
    A CMLM's step then masks its least confident tokens with ``<unk>`` again for the next
    iteration, in place: the fill is read from the ``history`` entry the step appends first
    (a list is lent when the generator keeps none), not from the re-masked output.
    """

    def __init__(self, model, report):
        self._model = model
        self._report = report

    def __getattr__(self, name):
        return getattr(self._model, name)

    def forward_decoder(self, decoder_out, encoder_out, **kwargs):
        model = self._model
        slots = decoder_out.output_tokens.eq(model.unk)
        history = [] if decoder_out.history is None else decoder_out.history
        kept = len(history)
        out = model.forward_decoder(decoder_out._replace(history=history), encoder_out, **kwargs)
        filled = history[kept] if len(history) > kept else out.output_tokens
        written = filled[slots]
        names = {"pad": model.pad, "unk": model.unk, "bos": model.bos, "early_eos": model.eos}
        self._report.add_symbols({n: int(written.eq(i).sum()) for n, i in names.items()},
                                 int(slots.sum()))
        return out if decoder_out.history is not None else out._replace(history=None)


class _TrackingEncoder:
    """``model.encoder`` whose ``reorder_encoder_out`` also reorders the captured sources."""

    def __init__(self, encoder, owner: "SolvingModel"):
        self._encoder = encoder
        self._owner = owner

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def reorder_encoder_out(self, encoder_out, new_order: Tensor):
        owner = self._owner
        order = new_order.reshape(-1).to(owner.sources[0].device)
        owner.sources = [owner.sources[0].index_select(0, order),
                         owner.sources[1].index_select(0, order)]
        return self._encoder.reorder_encoder_out(encoder_out, new_order)


class SolvingModel:
    """A NAT model whose last refinement step minimises the teacher energy with ``solver``.

    Args:
        model: the NAT (``cmlm_infnet``, ``bilstm_infnet``, ``cmlm_transformer``): an
            ``nn.Module`` whose ``decoder(normalize, prev_output_tokens, encoder_out)``
            returns (R, T + 2, V) logits.
        solver: an instance of a registered solver class (not ``viterbi``).
        energy: the frozen teacher.
        cfg: the task config (``gd_*``, ``tailor_*``).
        generator: random source of ``--gd-init random``.

    ``R`` rows are decoded (``B * K`` with a length beam of ``K``). Their sources are
    captured in :meth:`forward_encoder` and kept aligned through the stock generator's
    reorders (length beam, finished rows), which it makes through
    ``model.encoder.reorder_encoder_out``: :attr:`encoder` is the NAT's encoder with that
    method wrapped. No row finishes before the last step (``--iter-decode-force-max-iter``
    is required with refinement iterations), so the solved rows are the generator's
    candidates in order: :attr:`solved` keeps their problem and logits (R, T, V).
    """

    def __init__(self, model, solver, energy: TranslationEnergy, cfg,
                 generator: Optional[torch.Generator] = None):
        self._model = model
        self._solver = solver
        self._energy = energy
        self._cfg = cfg
        self._generator = generator
        self.encoder = _TrackingEncoder(model.encoder, self)
        self.sources = None  # [src_tokens (R, S), src_lengths (R,)] of the current rows
        self.solved: Optional[Tuple[Problem, Optional[Tensor]]] = None

    def __getattr__(self, name):
        return getattr(self._model, name)

    def forward_encoder(self, encoder_inputs):
        """The NAT's encoder output; remembers ``[src_tokens, src_lengths]`` of the rows."""
        self.sources = list(encoder_inputs)
        return self._model.forward_encoder(encoder_inputs)

    def forward_decoder(self, decoder_out, encoder_out, **kwargs):
        """The NAT's step, except at the last one: the solver's argmax written into the
        slots (the ``<unk>`` positions of ``y``) of ``output_tokens`` (R, T + 2), its
        ``log_softmax`` into ``output_scores``."""
        if decoder_out.step != decoder_out.max_step - 1:
            return self._model.forward_decoder(decoder_out, encoder_out, **kwargs)
        problem = self.problem(decoder_out.output_tokens, encoder_out)
        outputs, logits = self._solver.solve(problem)
        self.solved = (problem, logits)
        if outputs is None:
            outputs = logits.argmax(-1)
        tokens = decoder_out.output_tokens.clone()
        slots = tokens[:, 1:-1].eq(self._model.unk) & problem.mask
        tokens[:, 1:-1] = torch.where(slots, outputs, tokens[:, 1:-1])
        scores = decoder_out.output_scores.clone()
        if logits is not None:
            chosen = F.log_softmax(logits.float(), -1).gather(2, outputs[..., None])[..., 0]
            scores[:, 1:-1] = torch.where(slots, chosen.type_as(scores), scores[:, 1:-1])
        history = decoder_out.history
        if history is not None:
            history.append(tokens.clone())
        return decoder_out._replace(output_tokens=tokens, output_scores=scores, attn=None,
                                    history=history)

    def problem(self, tokens: Tensor, encoder_out) -> Problem:
        """The rows ``tokens`` (R, T + 2) ``[bos y eos]`` as a problem over ``y`` (R, T)."""
        mask = strip_nat_boundaries(tokens, self._model.pad)[1]
        src_tokens, src_lengths = self.sources
        shared = self._model

        def nat_logits(model) -> Tensor:
            """(R, T, V) logits of ``model`` (the NAT or a tailored copy) at ``y``."""
            encoded = encoder_out if model is shared else model.forward_encoder(
                [src_tokens, src_lengths])
            out = model.decoder(normalize=False, prev_output_tokens=tokens, encoder_out=encoded)
            return out[:, 1:-1]

        energy = self._energy
        return Problem(
            energy=energy, mask=mask, num_choices=energy.vocab_size, cfg=self._cfg,
            condition=lambda: energy.condition({"src_tokens": src_tokens,
                                                "src_lengths": src_lengths}),
            infnet=shared, infnet_logits=nat_logits, generator=self._generator)


class LengthSelectingGenerator(IterativeRefinementGenerator):
    """fairseq's iterative refinement with oracle lengths, energy length selection and the
    energy-minimising solvers.

    Build it with :meth:`extending` from the stock generator that ``translation_lev`` makes
    from the ``--iter-decode-*`` options. With a length beam and a teacher, the stock
    reranking hook sees every candidate: :meth:`generate` passes the teacher as the last
    model (where stock fairseq expects its external reranker) and :meth:`rerank` numbers
    the candidates and, with ``--length-select energy``, sets each one's ``score`` to
    ``-E / (n + 1)`` and records its ``energy`` (nats); the stock code then maximises the
    score over the length beam (the printed ``H-`` score is the teacher's average
    log-probability, base 2).
    """

    energy: Optional[TranslationEnergy] = None
    oracle_length: bool = False
    select_by_energy: bool = False
    solver: Optional[type] = None
    cfg = None
    report = None
    _random = None

    @classmethod
    def extending(cls, generator: IterativeRefinementGenerator, cfg,
                  energy: Optional[TranslationEnergy] = None,
                  solver: Optional[type] = None) -> "LengthSelectingGenerator":
        """A generator with ``generator``'s settings plus the length and solver options.

        Args:
            generator: the stock generator (its ``beam_size`` is the length beam ``K``).
            cfg: the task config: ``length_select`` (``energy``: select among the ``K``
                lengths by teacher energy per token; needs ``K > 1``), ``oracle_length``
                (decode the reference lengths only; the batch needs ``target``; no length
                beam) and the solver options (``inference``, ``gd_*``, ``tailor_*``).
            energy: the teacher; needed by ``--length-select energy`` and by ``solver``.
            solver: a registered solver class that replaces the NAT's last refinement
                step (:class:`SolvingModel`); None keeps the NAT's own decode.
        """
        select_by_energy = str(cfg.length_select) == "energy"
        _check_options(generator, cfg, energy, select_by_energy, solver)
        selecting = cls.__new__(cls)
        selecting.__dict__.update(vars(generator))
        selecting.energy, selecting.cfg, selecting.solver = energy, cfg, solver
        selecting.oracle_length = bool(cfg.oracle_length)
        selecting.select_by_energy = select_by_energy
        selecting.reranking = generator.beam_size > 1 and (select_by_energy or solver is not None)
        selecting.report = start_report("nat" if solver is None else solver.name)
        return selecting

    @torch.no_grad()
    def generate(self, models, sample, prefix_tokens=None, constraints=None):
        """The stock decode of ``models[0]`` with the options of :meth:`extending`; with a
        solver, timed, and the teacher energies of the chosen outputs added to the report."""
        model = solving = None
        if self.solver is not None:
            model = solving = SolvingModel(models[0], self.solver(), self.energy, self.cfg,
                                           self._generator(sample))
        if self.oracle_length:
            if sample.get("target") is None:
                raise ValueError("--oracle-length decodes with the reference lengths; this "
                                 "batch has no target")
            model = _OracleLength(model or models[0], sample["target"])
        models = [_CountingSymbols(model or models[0], self.report), *models[1:]]
        if self.reranking:
            models = [*models, self.energy.model]
        if solving is None:
            return super().generate(models, sample, prefix_tokens, constraints)
        with self.report.timed():
            try:
                chosen = super().generate(models, sample, prefix_tokens, constraints)
            except DivergedError as error:
                rows = sample["id"].repeat_interleave(self.beam_size).tolist()
                raise error.named(rows) from None
        self._report_energies(chosen, sample["net_input"], solving.solved)
        return chosen

    def _generator(self, sample) -> torch.Generator:
        """The random source of ``--gd-init random`` (seeded ``--seed``, made once)."""
        if self._random is None:
            device = sample["net_input"]["src_tokens"].device
            self._random = torch.Generator(device=device).manual_seed(int(self.cfg.seed))
        return self._random

    def _report_energies(self, chosen, net_input, solved):
        """Adds the discrete teacher energies of the ``chosen`` outputs (B,) and the relaxed
        energies of the solver's logits of the same candidates to the report."""
        tokens = [hypos[0]["tokens"] for hypos in chosen]
        discrete, _ = self._teacher_energies(tokens, net_input["src_tokens"],
                                             net_input["src_lengths"], repeat=1)
        problem, logits = solved
        relaxed = None
        if logits is not None:
            rows = torch.tensor([hypos[0].get("candidate", b) for b, hypos in enumerate(chosen)],
                                device=logits.device)
            relaxed = problem.energy.relaxed_energy(problem.context, logits, problem.mask)[rows]
        self.report.add(discrete, relaxed)

    def _teacher_energies(self, tokens, src_tokens, src_lengths, repeat: int):
        """``(energies (R,), n (R,))``: the teacher energies and lengths ``n`` of the NAT
        rows ``tokens`` (R tensors ``[bos y_1 .. y_n eos]``), each source row (B, S) taken
        ``repeat`` times in a row (R = B * repeat)."""
        context = self.energy.condition({
            "src_tokens": src_tokens.repeat_interleave(repeat, 0),
            "src_lengths": src_lengths.repeat_interleave(repeat, 0),
        })
        y, mask = strip_nat_boundaries(data_utils.collate_tokens(tokens, self.pad), self.pad)
        return self.energy.discrete_energy(context, y, mask), mask.sum(1)

    def rerank(self, reranker, finalized, encoder_input, beam_size):
        """Numbers the candidates (``candidate``) and, with ``--length-select energy``,
        scores every one by ``-E / (n + 1)`` under :attr:`energy`.

        ``finalized`` holds ``B * K`` one-hypothesis lists, candidate ``j`` of sentence
        ``b`` at ``b * K + j``; ``encoder_input`` is ``[src_tokens, src_lengths]`` (B rows).
        """
        for i, hypos in enumerate(finalized):
            hypos[0]["candidate"] = i
        if not self.select_by_energy:
            return finalized
        tokens = [f[0]["tokens"] for f in finalized]
        energies, lengths = self._teacher_energies(tokens, *encoder_input, repeat=beam_size)
        per_token = energies / (lengths + 1)  # EOS counted
        for hypos, energy, score in zip(finalized, energies.tolist(), (-per_token).tolist()):
            hypos[0]["energy"] = energy
            hypos[0]["score"] = score
        return finalized


def _check_options(generator, cfg, energy, select_by_energy: bool, solver) -> None:
    """Raises ``ValueError`` naming the flags of a combination that cannot run."""
    if cfg.oracle_length and generator.beam_size > 1:
        raise ValueError("--oracle-length decodes the reference length only: drop "
                         "--iter-decode-with-beam (or --length-select energy)")
    if (select_by_energy or solver is not None) and generator.reranking:
        raise ValueError("--iter-decode-with-external-reranker does not combine with "
                         "--length-select energy or --inference other than infnet; use "
                         "--length-select energy")
    if select_by_energy and generator.beam_size < 2:
        raise ValueError("--length-select energy chooses among length candidates: pass "
                         "--iter-decode-with-beam K with K > 1")
    if (select_by_energy or solver is not None) and energy is None:
        raise ValueError("--length-select energy and --inference gd|warmstart|tailored need "
                         "--energy-path TEACHER_CHECKPOINT")
    if solver is not None and generator.max_iter > 0 and generator.adaptive:
        raise ValueError(
            f"--inference {solver.name} minimises the energy at the last refinement step, "
            f"which fairseq's adaptive early stop lets rows skip with --iter-decode-max-iter "
            f"{generator.max_iter}: add --iter-decode-force-max-iter (or decode with "
            "--iter-decode-max-iter 0)")
