"""Tagging inference networks ``A_Ψ(x)`` (Tu & Gimpel 2019, §4.1): CNN, BLSTM and seq2seq.

Each model maps the padded words of a batch to label logits ``(B, T, L)``, ``L`` the number
of real labels of the task (``task.labels``); the ``energy_loss`` criterion relaxes them
(e.g. softmax) and scores them with a frozen energy. ``forward`` is a pure function of its
input (no state is kept between calls), so a criterion or a solver may call it any number
of times. Logits at padded positions are unspecified: mask them with ``padding_mask``.

Registered models (each name is also the architecture with the config's defaults):

- ``tagger_cnn``: window CNN over word features, ``--cnn-widths`` (default ``1,3``).
- ``tagger_blstm``: BLSTM tagger, ``--layers`` 1 or 2.
- ``tagger_seq2seq``: BLSTM encoder and an LSTM decoder with fixed attention that
  conditions on the previously predicted label.

The "+" setting (infnet+) adds the BLSTM-CRF+ improvements of §2.1 through the shared
encoder options (``--char-filters``, ``--dropout``; word embeddings are fine-tuned unless
``--freeze-embeddings``); the ``tagger_cnn_plus``, ``tagger_blstm_plus`` and
``tagger_seq2seq_plus`` architectures default to ``blstm_crf_plus``'s settings
(``PLUS_DEFAULTS``), so that an infnet+ has the word features and sizes of the tuned energy.
"""

from dataclasses import dataclass, field
from typing import List

import torch
import torch.nn as nn
from fairseq.models import register_model, register_model_architecture
from torch import Tensor

from engine_plugin.models.blstm_crf import (
    BLSTMEncoder,
    TaggerEncoderConfig,
    TaggingModel,
    apply_plus_defaults,
    check_dictionaries,
)
from engine_plugin.modules.word_features import WordFeatures


@dataclass
class TaggerCNNConfig(TaggerEncoderConfig):
    """``tagger_cnn`` options; ``--hidden-size`` is the number of filters per width."""

    cnn_widths: str = field(
        default="1,3",
        metadata={"help": "comma-separated odd filter widths 2n+1 of the word CNN, each with "
                          "--hidden-size filters (paper: 1,3 or 1,5); --layers is not used"},
    )


@dataclass
class TaggerSeq2SeqConfig(TaggerEncoderConfig):
    """``tagger_seq2seq`` options; ``--hidden-size`` is also the decoder LSTM size."""

    label_embed_dim: int = field(
        default=50, metadata={"help": "size of the embedding of the previous predicted label"}
    )


def parse_widths(widths: str) -> List[int]:
    """``"1,3"`` -> ``[1, 3]``; raises ``ValueError`` unless every width is a positive odd int."""
    try:
        parsed = [int(w) for w in widths.split(",")]
    except ValueError:
        parsed = []
    if not parsed or any(w < 1 or w % 2 == 0 for w in parsed):
        raise ValueError(
            f"--cnn-widths {widths!r}: expected comma-separated odd widths such as 1,3 "
            "(a width-(2n+1) filter is centred on the word it labels)"
        )
    return parsed


class TaggerInfnet(TaggingModel):
    """Base class of the tagging inference networks: subclasses build their layers in
    ``__init__(cfg, dictionary, num_labels)`` and override ``forward``."""

    def __init__(self, cfg, dictionary, num_labels):
        super().__init__()
        self.cfg = cfg
        self.padding_idx = dictionary.pad()
        self.num_labels = num_labels

    @classmethod
    def from_pretrained(cls, *args, energy_path=None, inference="infnet", **kwargs):
        """:meth:`TaggingModel.from_pretrained` for the inference network in
        ``model_name_or_path/checkpoint_file``, measured against the CRF checkpoint
        ``energy_path``; ``inference`` is ``infnet``, ``tailored`` or ``warmstart``."""
        if not energy_path:
            raise ValueError("an inference network is decoded against its CRF energy: pass "
                             "energy_path=CRF_CHECKPOINT")
        return super().from_pretrained(*args, energy_path=energy_path, inference=inference,
                                       **kwargs)

    @classmethod
    def build_model(cls, cfg, task):
        check_dictionaries(cfg, task)
        return cls(cfg, task.source_dictionary, task.labels.num_labels)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, **unused) -> Tensor:
        """Label logits ``(B, T, L)`` of the right-padded word ids ``src_tokens`` (B, T)
        with lengths ``src_lengths`` (B,)."""
        raise NotImplementedError



@register_model("tagger_cnn", dataclass=TaggerCNNConfig)
class TaggerCNN(TaggerInfnet):
    """Window CNN tagger (§4.1.1): for each width ``2n+1``, ``H`` filters
    ``f_n(x, t) = relu(W_n [v_{t-n}; ...; v_{t+n}] + b_n)`` centred on word t, without
    pooling over positions; the feature maps of all widths are concatenated and mapped
    linearly to the L label logits. Word features at padded positions are zeroed before
    the convolution, so a sentence's logits do not depend on the padding of its batch.
    """

    def __init__(self, cfg, dictionary, num_labels):
        super().__init__(cfg, dictionary, num_labels)
        self.features = WordFeatures.from_config(cfg, dictionary)
        widths = parse_widths(cfg.cnn_widths)
        self.convs = nn.ModuleList(
            nn.Conv1d(self.features.output_dim, cfg.hidden_size, w, padding=w // 2)
            for w in widths
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(len(widths) * cfg.hidden_size, num_labels)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, **unused) -> Tensor:
        """Label logits ``(B, T, L)`` of ``src_tokens`` (B, T); ``src_lengths`` is unused
        (padding is read from the tokens)."""
        real = self.padding_mask(src_tokens).unsqueeze(2)
        x = self.features(src_tokens).masked_fill(~real, 0.0).transpose(1, 2)  # (B, D, T)
        maps = torch.cat([torch.relu(conv(x)) for conv in self.convs], dim=1)  # (B, kH, T)
        return self.output(self.dropout(maps.transpose(1, 2)))


@register_model("tagger_blstm", dataclass=TaggerEncoderConfig)
class TaggerBLSTM(TaggerInfnet):
    """BLSTM tagger (§4.1.2): BLSTM states ``(B, T, 2H)`` mapped linearly to L logits."""

    def __init__(self, cfg, dictionary, num_labels):
        super().__init__(cfg, dictionary, num_labels)
        self.encoder = BLSTMEncoder(cfg, dictionary)
        self.output = nn.Linear(self.encoder.output_dim, num_labels)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, **unused) -> Tensor:
        """Label logits ``(B, T, L)`` of ``src_tokens`` (B, T) with lengths (B,)."""
        return self.output(self.encoder(src_tokens, src_lengths))


@register_model("tagger_seq2seq", dataclass=TaggerSeq2SeqConfig)
class TaggerSeq2Seq(TaggerInfnet):
    """Seq2seq tagger with fixed attention (§4.1.3, after Goyal et al. 2018).

    A BLSTM encodes the words into ``s_t`` (B, T, 2H). An LSTM decoder (size H) reads at
    step t the input ``[s_t; e(y_{t-1})]`` - attention fixed on position t - where
    ``e(y_{t-1})`` embeds the label predicted at step t−1 (``argmax`` of that step's
    logits, in training as in decoding) and ``e(y_0)`` is a learned start embedding. The
    logits are ``z_t = W_s [h_t; s_t]``, i.e. ``P(y_t | y_<t, x) = softmax(z_t)``.

    The argmax is not differentiable: gradients reach the parameters through ``h_t`` and
    ``s_t`` but not through the choice of the previous label. The decoder runs left to
    right over the padded length T, batched over B; since padding is on the right, the
    logits of real positions never depend on padded ones.
    """

    def __init__(self, cfg, dictionary, num_labels):
        super().__init__(cfg, dictionary, num_labels)
        self.encoder = BLSTMEncoder(cfg, dictionary)
        self.start = num_labels  # index of the start embedding
        self.label_embed = nn.Embedding(num_labels + 1, cfg.label_embed_dim)
        self.decoder = nn.LSTMCell(self.encoder.output_dim + cfg.label_embed_dim, cfg.hidden_size)
        self.output = nn.Linear(cfg.hidden_size + self.encoder.output_dim, num_labels)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, **unused) -> Tensor:
        """Label logits ``(B, T, L)`` of ``src_tokens`` (B, T) with lengths (B,)."""
        states = self.encoder(src_tokens, src_lengths)  # (B, T, 2H)
        batch, length, _ = states.shape
        h = c = states.new_zeros(batch, self.decoder.hidden_size)
        previous = src_tokens.new_full((batch,), self.start)
        logits = []
        for t in range(length):
            step_input = torch.cat([states[:, t], self.label_embed(previous)], dim=1)
            h, c = self.decoder(step_input, (h, c))
            logits.append(self.output(torch.cat([h, states[:, t]], dim=1)))
            previous = logits[-1].argmax(dim=1)
        return torch.stack(logits, dim=1)


# The base architectures are the configs' defaults (registered with the models); the "+"
# architectures default to the BLSTM-CRF+ settings (character CNN, dropout 0.5, tuned sizes).
@register_model_architecture("tagger_cnn", "tagger_cnn_plus")
def tagger_cnn_plus(args):
    apply_plus_defaults(args)


@register_model_architecture("tagger_blstm", "tagger_blstm_plus")
def tagger_blstm_plus(args):
    apply_plus_defaults(args)


@register_model_architecture("tagger_seq2seq", "tagger_seq2seq_plus")
def tagger_seq2seq_plus(args):
    apply_plus_defaults(args)
