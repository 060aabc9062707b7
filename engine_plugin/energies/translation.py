"""ENGINE's translation energy: a frozen autoregressive teacher scoring relaxed outputs.

For a source ``x`` and a target of ``n`` tokens followed by EOS (``T = n + 1`` real
positions), with decoder inputs ``u_0 .. u_{T-1}`` and output distributions ``y_1 .. y_T``
(all rows distributions over the teacher's target vocabulary ``V``),

    E(x, u, y) = sum_{t=1}^{T} -y_t . log p(. | u_0, ..., u_{t-1}, x)        (ENGINE eq. 2-3)

A decoder input ``u_t`` is embedded as ``u_t @ embed_tokens.weight`` and then goes through
the teacher exactly like a token (embedding scale, positions, layer norm, ...). ``u_0`` is
the one-hot of the decoder-start symbol, which in stock fairseq ``translation`` is EOS:
the token path feeds ``[eos y_1 .. y_n]`` and predicts ``[y_1 .. y_n eos]``. With one-hot
``u`` and ``y`` the energy is the teacher's negative log-likelihood of the target, bit for
bit the value of the token path (:meth:`TranslationEnergy.nll`): a one-hot row times the
embedding matrix is exactly that row, as long as float32 matmuls run in full precision
(torch's default; TF32 would round the soft embeddings).

Shapes: ``B`` batch, ``S`` padded source length, ``T`` padded target length (EOS
included), ``V`` target vocabulary size. Targets are right-padded: a ``target_mask`` is a
``(B, T)`` bool tensor, True on real positions, each row a non-empty prefix.

As a :class:`~engine_plugin.energies.base.StructuredEnergy` (what the ``energy_loss``
criterion and the solvers use), outputs are the ``n`` target tokens only, ``(B, N, V)``
logits or ``(B, N)`` tokens with a ``(B, N)`` mask: the energy adds the decoder-start
symbol and the final EOS itself (:meth:`TranslationEnergy.add_boundaries`,
:meth:`TranslationEnergy.frame_tokens`). Sources may come in the ``translation_lev``
layout ``[bos x eos]``: :meth:`TranslationEnergy.condition` drops the BOS, giving the
teacher the ``[x eos]`` it was trained on.
"""

from typing import Any, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from engine_plugin.checkpoints import freeze, load_frozen_model, weights_digest
from engine_plugin.energies.base import StructuredEnergy
from engine_plugin.masks import check_mask
from engine_plugin.relaxations import relax


class TranslationEnergy(StructuredEnergy):
    """Energy of (relaxed) translations under a frozen stock fairseq encoder-decoder.

    Works with any model whose decoder embeds its input tokens with one ``nn.Embedding``
    call (``decoder.embed_tokens``) and is otherwise driven only by the padding pattern of
    the tokens: the ``transformer`` and ``lstm`` families, among others.

    This is deliberately a plain Python object, not an ``nn.Module``. Stored as an attribute
    of a trainable model (an inference network), it is not registered as a submodule, so
    fairseq does not hand the teacher's parameters to the optimiser, does not save them in
    the infnet's checkpoints, does not wrap them in DistributedDataParallel, and
    ``infnet.train()`` does not switch the teacher's dropout back on. The price is that the
    infnet's ``.to()``/``.cuda()``/``.half()`` do not reach the teacher either: call
    :meth:`to` yourself. ``copy.deepcopy`` of an infnet shares the teacher instead of
    copying it (it is frozen).

    The teacher is frozen on construction (eval mode, ``requires_grad=False``). Gradients
    flow through it to the distributions passed to :meth:`energy` and :meth:`log_probs`.
    """

    def __init__(self, model: nn.Module, src_dict, tgt_dict):
        """
        Args:
            model: a fairseq encoder-decoder model (frozen in place).
            src_dict, tgt_dict: the teacher's fairseq ``Dictionary`` objects.
        """
        decoder = getattr(model, "decoder", None)
        if getattr(model, "encoder", None) is None or decoder is None:
            raise ValueError(f"{type(model).__name__} is not an encoder-decoder model")
        embed = getattr(decoder, "embed_tokens", None)
        if not isinstance(embed, nn.Embedding):
            raise ValueError(
                f"{type(decoder).__name__}.embed_tokens is {type(embed).__name__}, but a "
                "relaxed energy needs an nn.Embedding (adaptive inputs are not supported)"
            )
        if embed.num_embeddings != len(tgt_dict):
            raise ValueError(
                f"decoder embeds {embed.num_embeddings} symbols but the target dictionary "
                f"has {len(tgt_dict)}"
            )
        self.model = freeze(model)
        self.src_dict = src_dict
        self.tgt_dict = tgt_dict
        # decoder-start symbol: fairseq's translation task starts the decoder with EOS
        # (prev_output_tokens = [eos y_1 .. y_n]), not with the dictionary's <s>
        self.bos = tgt_dict.eos()
        self.eos = tgt_dict.eos()
        self.pad = tgt_dict.pad()

    @classmethod
    def from_checkpoint(cls, path: str, task=None, arg_overrides=None) -> "TranslationEnergy":
        """Loads a stock fairseq checkpoint; arguments as for
        :func:`engine_plugin.checkpoints.load_frozen_model`."""
        model, _, task = load_frozen_model(
            path, task=task, arg_overrides=arg_overrides, accepts=_is_autoregressive,
            needed="an autoregressive translation model (transformer or lstm families) as "
                   "the teacher energy")
        return cls(model, task.source_dictionary, task.target_dictionary)

    def weights_digest(self) -> str:
        return weights_digest(self.model)

    @property
    def vocab_size(self) -> int:
        """V, the size of the teacher's target dictionary (the last dimension of every dist)."""
        return len(self.tgt_dict)

    def to(self, *args, **kwargs) -> "TranslationEnergy":
        """Moves the teacher (``nn.Module.to`` arguments) and returns ``self``."""
        self.model.to(*args, **kwargs)
        return self

    def __deepcopy__(self, memo) -> "TranslationEnergy":
        return self

    def check_dictionaries(self, src_dict, tgt_dict) -> None:
        """Raises ``ValueError`` unless both dictionaries equal the teacher's.

        The relaxed outputs are distributions over the teacher's target vocabulary and the
        source tokens are fed to the teacher's encoder, so an infnet must use the very same
        dictionaries (same symbols, same order, same special indices).
        """
        for side, ours, theirs in (
            ("source", self.src_dict, src_dict),
            ("target", self.tgt_dict, tgt_dict),
        ):
            if ours.symbols == theirs.symbols and _specials(ours) == _specials(theirs):
                continue
            problem = f"{side} dictionary has {len(theirs)} symbols, the teacher's has {len(ours)}"
            diff = next(
                (i for i, (a, b) in enumerate(zip(theirs.symbols, ours.symbols)) if a != b), None
            )
            if diff is not None:
                problem += (
                    f"; first difference at index {diff}: {theirs.symbols[diff]!r} "
                    f"(teacher: {ours.symbols[diff]!r})"
                )
            elif len(ours) == len(theirs):
                problem += (
                    f"; special indices (pad, eos, unk, bos) differ: {_specials(theirs)} "
                    f"(teacher: {_specials(ours)})"
                )
            raise ValueError(
                f"{problem}. Binarise the infnet's data with the teacher's dictionaries "
                "(fairseq-preprocess --srcdict <teacher's dict.src.txt> "
                "--tgtdict <teacher's dict.tgt.txt>)."
            )

    def encode(self, src_tokens: Tensor, src_lengths: Tensor) -> Any:
        """Runs the teacher's encoder once; the result is reused by every energy call.

        Args:
            src_tokens: (B, S) source token ids, padded as the teacher's task collates them
                (stock ``translation``: left-padded; right-padding works too).
            src_lengths: (B,) number of real source tokens (EOS included).

        Returns:
            The encoder's output in the teacher's own format (a dict for transformers, a
            tuple for LSTMs), in the order of ``src_tokens``. Batches not sorted by
            decreasing length (which fairseq's LSTM encoder requires) are sorted for the
            encoder and put back in order with ``reorder_encoder_out``.
        """
        order = torch.argsort(src_lengths, descending=True, stable=True)
        if torch.equal(order, torch.arange(len(order), device=order.device)):
            return self.model.encoder(src_tokens, src_lengths=src_lengths)
        encoder_out = self.model.encoder(src_tokens[order], src_lengths=src_lengths[order])
        return self.model.encoder.reorder_encoder_out(encoder_out, torch.argsort(order))

    @torch.no_grad()
    def condition(self, net_input: dict) -> Any:
        """Encodes a batch's sources once, without gradients (:meth:`encode`).

        Args:
            net_input: ``sample["net_input"]`` with ``src_tokens`` (B, S) and ``src_lengths``
                (B,). Sources in the ``translation_lev`` layout ``[bos x eos]`` are mapped to
                the teacher's ``[x eos]`` first (:meth:`strip_source_bos`).
        """
        return self.encode(*self.strip_source_bos(net_input["src_tokens"],
                                                  net_input["src_lengths"]))

    def strip_source_bos(self, src_tokens: Tensor, src_lengths: Tensor) -> Tuple[Tensor, Tensor]:
        """Drops the leading BOS of every source row that has one, keeping the padding side.

        fairseq's NAT task (``translation_lev``) prepends BOS to sources, stock
        ``translation`` (which trained the teacher) does not: ``[bos x eos]`` -> ``[x eos]``.
        Rows that do not start with BOS are left as they are.

        Args:
            src_tokens: (B, S) left-padded (fairseq's default) or right-padded tokens.
            src_lengths: (B,) real tokens per row.

        Returns:
            ``(src_tokens (B, S'), src_lengths (B,))``, padded on the same side, ``S'`` the
            new longest row.
        """
        pad, bos = self.src_dict.pad(), self.src_dict.bos()
        real = src_tokens.ne(pad)
        rows = torch.arange(src_tokens.size(0), device=src_tokens.device)
        first = real.long().argmax(1)  # first real position of each row
        has_bos = real[rows, first] & src_tokens[rows, first].eq(bos)
        if not has_bos.any():
            return src_tokens, src_lengths
        keep = real.clone()
        keep[rows, first] &= ~has_bos
        left_pad = bool(src_tokens[:, 0].eq(pad).any())
        # a stable sort moves the dropped BOS to the padding side, keeping token order
        order = (keep if left_pad else ~keep).long().argsort(dim=1, stable=True)
        tokens = src_tokens.gather(1, order).masked_fill(~keep.gather(1, order), pad)
        width = int(keep.sum(1).max())
        tokens = tokens[:, tokens.size(1) - width:] if left_pad else tokens[:, :width]
        return tokens, src_lengths - has_bos.to(src_lengths.dtype)

    def relaxed_energy(
        self,
        context: Any,
        logits: Tensor,
        mask: Tensor,
        o1: str = "sx",
        o2: str = "sx",
        generator: Optional[torch.Generator] = None,
    ) -> Tensor:
        """(B,) energies of relaxed translations (ENGINE eq. 2-3 with operators O1, O2).

        ``O1(logits)`` are the decoder inputs after the start symbol, ``O2(logits)`` the
        distributions scored before the final EOS (:meth:`add_boundaries`). The operators
        are applied independently, O1 first, then O2, each drawing its own Gumbel noise
        from ``generator`` (``sg``/``gx`` only).

        Args:
            context: from :meth:`condition`.
            logits: (B, N, V) scores of the ``n`` target tokens (no start symbol, no EOS).
            mask: (B, N) bool, True on the first ``n_b`` positions of row ``b``.
            o1, o2: relaxation operators (``engine_plugin.relaxations.OPERATORS``).
            generator: random source of the Gumbel operators, on ``logits``' device.

        Returns:
            (B,) summed energies, differentiable with respect to ``logits``.
        """
        inputs = relax(logits, o1, generator)
        outputs = relax(logits, o2, generator)
        return self.energy(context, *self.add_boundaries(inputs, outputs, mask))

    def discrete_energy(self, context: Any, outputs: Tensor, mask: Tensor) -> Tensor:
        """(B,) teacher NLL of the token translations ``outputs`` followed by EOS: the sum of
        :meth:`token_energies`."""
        return self.token_energies(context, outputs, mask).sum(1)

    def token_energies(self, context: Any, outputs: Tensor, mask: Tensor) -> Tensor:
        """(B, N+1) teacher NLL of each token of ``outputs``, then of the EOS after them.

        Computed like :meth:`relaxed_energy` of one-hot outputs (bit for bit), which for
        ordinary tokens is the stock token path (:meth:`nll`). Unlike the token path it also
        scores special symbols inside ``y`` as tokens (an untrained infnet may output
        padding, which the token path would take for the end of the sentence).

        Args:
            context: from :meth:`condition`.
            outputs: (B, N) target token ids (no start symbol, no EOS); values at masked
                positions are ignored.
            mask: (B, N) bool, True on the first ``n_b`` positions of row ``b``.

        Returns:
            (B, N+1) nats: row ``b`` holds ``n_b`` token energies, that of EOS, then zeros.
        """
        prev_output_tokens, target = self.frame_tokens(outputs, mask)
        target_mask = torch.cat([mask.new_ones(mask.size(0), 1), mask.bool()], 1)
        embedded = self.model.decoder.embed_tokens.weight[prev_output_tokens]
        lprobs = self._log_probs_of_embeddings(context, embedded, target_mask)
        token_energy = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return token_energy.masked_fill(~target_mask, 0.0)

    def frame_tokens(self, tokens: Tensor, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """The token version of :meth:`add_boundaries`: the teacher's decoder inputs and targets.

        Args:
            tokens: (B, N) target tokens ``y``; values at masked positions are ignored.
            mask: (B, N) bool, True on the first ``n_b`` positions of row ``b``.

        Returns:
            ``(prev_output_tokens, target)``, both (B, N+1) and right-padded:
            ``[bos y_1 .. y_n]`` and ``[y_1 .. y_n eos]``, as stock ``translation``
            collates them (its decoder-start symbol :attr:`bos` is EOS).
        """
        if tokens.dim() != 2 or mask.shape != tokens.shape:
            raise ValueError(
                f"tokens {tuple(tokens.shape)} and mask {tuple(mask.shape)} must both be (B, N)"
            )
        mask = mask.bool()
        if (mask[:, 1:] & ~mask[:, :-1]).any():
            raise ValueError("mask rows must be prefixes: True on the first n_b positions")
        y = tokens.masked_fill(~mask, self.pad)
        column = y.new_full((y.size(0), 1), self.pad)
        target = torch.cat([y, column], 1).scatter(1, mask.sum(1, keepdim=True), self.eos)
        prev_output_tokens = torch.cat([column.fill_(self.bos), y], 1)
        return prev_output_tokens, target

    def log_probs(
        self, encoder_out: Any, decoder_input_dist: Tensor, target_mask: Tensor
    ) -> Tensor:
        """Teacher log-probabilities ``log p(. | u_0..u_{t-1}, x)`` for every position t.

        Args:
            encoder_out: from :meth:`encode`.
            decoder_input_dist: (B, T, V) decoder inputs ``u``; row 0 should be the one-hot
                of :attr:`bos`. Rows at padded positions are ignored.
            target_mask: (B, T) bool, True on real positions.

        Returns:
            (B, T, V) float log-probabilities; rows at padded positions are what the token
            path gives for padding and carry no meaning.
        """
        self._check(decoder_input_dist, target_mask)
        weight = self.model.decoder.embed_tokens.weight
        soft = torch.matmul(decoder_input_dist.to(weight.dtype), weight)
        return self._log_probs_of_embeddings(encoder_out, soft, target_mask)

    def _log_probs_of_embeddings(self, encoder_out: Any, embedded: Tensor,
                                 target_mask: Tensor) -> Tensor:
        """:meth:`log_probs` of decoder inputs given as embedding rows ``embedded`` (B, T, C)."""
        embed = self.model.decoder.embed_tokens
        # Stand-in ids: the decoder derives positions and padding masks from them exactly as
        # for real tokens; only their embedding is replaced, so their values never matter.
        ids = torch.full_like(target_mask, self.tgt_dict.unk(), dtype=torch.long)
        ids.masked_fill_(~target_mask, self.pad)
        soft = embedded
        calls = []

        def replace_embedding(module, inputs, output):
            calls.append(inputs[0].shape)
            return torch.where(target_mask.unsqueeze(-1), soft, output)

        handle = embed.register_forward_hook(replace_embedding)
        try:
            net_output = self.model.decoder(ids, encoder_out=encoder_out)
        finally:
            handle.remove()
        if calls != [ids.shape]:
            raise RuntimeError(
                f"{type(self.model.decoder).__name__} called embed_tokens with inputs of shapes "
                f"{calls}, expected exactly one call on {tuple(ids.shape)}: this decoder does "
                "not embed its inputs the way TranslationEnergy relies on"
            )
        return self.model.get_normalized_probs(net_output, log_probs=True)

    def energy(
        self,
        encoder_out: Any,
        decoder_input_dist: Tensor,
        output_dist: Tensor,
        target_mask: Tensor,
    ) -> Tensor:
        """Energy ``E = sum_t -output_dist_t . log p(. | decoder_input_dist_<t, x)``.

        Args:
            encoder_out: from :meth:`encode`.
            decoder_input_dist: (B, T, V) decoder inputs (O1 of the infnet's logits, after
                :meth:`add_boundaries`).
            output_dist: (B, T, V) distributions scored at each position (O2 of the logits),
                the last real position of each row being EOS.
            target_mask: (B, T) bool, True on real positions; padded positions contribute 0.

        Returns:
            (B,) energies (sum over positions, no averaging), differentiable with respect to
            both distributions.
        """
        if output_dist.shape != decoder_input_dist.shape:
            raise ValueError(
                f"output_dist {tuple(output_dist.shape)} and decoder_input_dist "
                f"{tuple(decoder_input_dist.shape)} must have the same shape (B, T, V)"
            )
        lprobs = self.log_probs(encoder_out, decoder_input_dist, target_mask)
        token_energy = -(output_dist * lprobs).sum(-1)
        return token_energy.masked_fill(~target_mask, 0.0).sum(1)

    def nll(self, encoder_out: Any, target_tokens: Tensor, prev_output_tokens: Tensor) -> Tensor:
        """Negative log-likelihood of token targets through the stock token path.

        Args:
            encoder_out: from :meth:`encode`.
            target_tokens: (B, T) ``[y_1 .. y_n eos]``, right-padded with :attr:`pad`.
            prev_output_tokens: (B, T) ``[eos y_1 .. y_n]``, right-padded (fairseq's
                ``sample["net_input"]["prev_output_tokens"]``).

        Returns:
            (B,) summed NLL in nats, reduced like :meth:`energy`.
        """
        net_output = self.model.decoder(prev_output_tokens, encoder_out=encoder_out)
        lprobs = self.model.get_normalized_probs(net_output, log_probs=True)
        token_nll = -lprobs.gather(-1, target_tokens.unsqueeze(-1)).squeeze(-1)
        return token_nll.masked_fill(target_tokens.eq(self.pad), 0.0).sum(1)

    def add_boundaries(
        self, input_dist: Tensor, output_dist: Tensor, mask: Tensor
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Frames ``n`` relaxed target tokens with the decoder-start symbol and EOS.

        Args:
            input_dist: (B, N, V) distributions fed to the decoder after the start symbol
                (O1 of the infnet's logits).
            output_dist: (B, N, V) distributions scored at the same positions (O2).
            mask: (B, N) bool, True on the ``n_b`` real tokens of each row (a prefix,
                possibly empty).

        Returns:
            ``(decoder_input_dist, output_dist, target_mask)`` of shapes (B, N+1, V),
            (B, N+1, V), (B, N+1): inputs ``[onehot(bos), input_1 .. input_N]``, outputs
            ``[output_1 .. output_{n_b}, onehot(eos), ...]`` and the mask of the first
            ``n_b + 1`` positions, ready for :meth:`energy`.
        """
        if input_dist.shape != output_dist.shape or input_dist.dim() != 3:
            raise ValueError(
                f"input_dist {tuple(input_dist.shape)} and output_dist "
                f"{tuple(output_dist.shape)} must have the same shape (B, N, V)"
            )
        if mask.shape != input_dist.shape[:2]:
            raise ValueError(
                f"mask {tuple(mask.shape)} must have shape {tuple(input_dist.shape[:2])}"
            )
        bsz, _, vocab = input_dist.shape
        mask = mask.bool()
        target_mask = torch.cat([mask.new_ones(bsz, 1), mask], dim=1)
        bos = input_dist.new_zeros(bsz, 1, vocab)
        bos[:, :, self.bos] = 1
        eos = output_dist.new_zeros(vocab)
        eos[self.eos] = 1
        is_eos = nn.functional.one_hot(mask.sum(1), mask.shape[1] + 1).bool()
        outputs = torch.cat([output_dist, output_dist.new_zeros(bsz, 1, vocab)], dim=1)
        outputs = torch.where(is_eos.unsqueeze(-1), eos, outputs)
        return torch.cat([bos, input_dist], dim=1), outputs, target_mask

    def _check(self, dist: Tensor, mask: Tensor) -> None:
        if dist.dim() != 3 or dist.shape[-1] != self.vocab_size:
            raise ValueError(
                f"distributions must have shape (B, T, V={self.vocab_size}), "
                f"got {tuple(dist.shape)}"
            )
        if mask.dtype != torch.bool:
            raise ValueError(f"target_mask must be a bool tensor, got {mask.dtype}")
        check_mask(dist, mask, "distributions")


def _specials(dictionary) -> Tuple[int, int, int, int]:
    return dictionary.pad(), dictionary.eos(), dictionary.unk(), dictionary.bos()


def _is_autoregressive(model_class: type) -> bool:
    """True for stock encoder-decoder translation models, False for NAT ones."""
    from fairseq.models import FairseqEncoderDecoderModel
    from fairseq.models.nat import FairseqNATModel

    return issubclass(model_class, FairseqEncoderDecoderModel) and not issubclass(
        model_class, FairseqNATModel)
