"""BLSTM-CRF energy (Tu & Gimpel 2019, §2): BLSTM features, linear emissions, CRF transitions.

``blstm_crf``: word embeddings and a BLSTM (the config's defaults). ``blstm_crf_plus``
(BLSTM-CRF+): character CNN embeddings (filter width 3, max-pooling), fine-tuned word
embeddings and dropout 0.5 before the character CNN, before the BLSTM and after it, with the
sizes tuned on Twitter POS (``PLUS_DEFAULTS``).
"""

from dataclasses import dataclass, field
from typing import Optional

import torch.nn as nn
from fairseq.dataclass import FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model, register_model_architecture
from torch import Tensor

from engine_plugin import hub
from engine_plugin.checkpoints import model_class_of
from engine_plugin.crf import LinearChainCRF
from engine_plugin.data.labels import LabelSpace
from engine_plugin.modules.word_features import WordFeatures


@dataclass
class TaggerEncoderConfig(FairseqDataclass):
    """Options of the word encoder shared by the CRF energy and the tagging infnets."""

    embed_dim: int = field(default=100, metadata={"help": "word embedding size"})
    embed_path: Optional[str] = field(
        default=None, metadata={"help": "word2vec/GloVe text file of initial word embeddings"}
    )
    freeze_embeddings: bool = field(
        default=False, metadata={"help": "keep word embeddings fixed (use with --embed-path)"}
    )
    char_filters: int = field(
        default=0, metadata={"help": "character CNN filters; 0 = no character CNN"}
    )
    char_dim: int = field(default=30, metadata={"help": "character embedding size"})
    word_dropout: float = field(
        default=0.0, metadata={"help": "probability of replacing a training word by <unk>"}
    )
    lowercase_embeddings: bool = field(
        default=False,
        metadata={"help": "embed words by their lowercased form where it was seen in training"},
    )
    hidden_size: int = field(default=100, metadata={"help": "LSTM size per direction"})
    layers: int = field(default=1, metadata={"help": "BLSTM layers"})
    dropout: float = field(
        default=0.0,
        metadata={"help": "dropout before the character CNN, before and after the BLSTM"},
    )
    dictionary_checksum: str = field(
        default="", metadata={"help": "set by training: digest of the task's dictionaries"}
    )


# BLSTM-CRF+ defaults: the settings tuned on the Twitter POS validation split (RESULTS.md, run
# C: 87.65 valid, 87.76 test); the shared word-feature options of the "+" tagging infnets too.
PLUS_DEFAULTS = {
    "dropout": 0.5,
    "hidden_size": 200,
    "embed_dim": 50,
    "char_filters": 200,
    "char_dim": 50,
    "word_dropout": 0.4,
    "lowercase_embeddings": True,
}


def add_negated_flags(parser):
    """``--no-lowercase-embeddings``: turns off the ``True`` that an architecture may default
    it to (the dataclass's own flag can only turn it on)."""
    parser.add_argument("--no-lowercase-embeddings", dest="lowercase_embeddings",
                        action="store_false",
                        help="embed every word by its own form (turns off "
                             "--lowercase-embeddings, e.g. of blstm_crf_plus)")


def apply_plus_defaults(args):
    """Sets every ``PLUS_DEFAULTS`` option that the command line did not set."""
    for name, value in PLUS_DEFAULTS.items():
        setattr(args, name, getattr(args, name, value))


def check_dictionaries(cfg, task):
    """Records the task's dictionary digest in ``cfg`` or checks it against the recorded one."""
    current = task.dictionary_checksum()
    if not cfg.dictionary_checksum:
        cfg.dictionary_checksum = current
    elif cfg.dictionary_checksum != current:
        raise ValueError(
            f"the checkpoint was trained with other word/label dictionaries than those in "
            f"{task.cfg.data} (digest {cfg.dictionary_checksum} != {current}): binarise the "
            "data with the training run's dictionaries (fairseq-preprocess --srcdict "
            "TRAIN_BIN/dict.words.txt --tgtdict TRAIN_BIN/dict.tags.txt)"
        )


def require_tagging_model(cfg):
    """Raises ``ValueError`` unless the model config ``cfg`` is one of a tagging model (the
    CRF energy or a tagging infnet), e.g. when a translation checkpoint is passed instead."""
    arch, model_class = model_class_of(cfg)
    if model_class is None or not issubclass(model_class, TaggingModel):
        raise ValueError(
            f"the checkpoint holds a {arch} model, but --task sequence_labeling needs a "
            "blstm_crf energy or a tagger_* inference network"
        )


class BLSTMEncoder(nn.Module):
    """Word features -> BLSTM states ``(B, T, 2H)``, with dropout before and after."""

    def __init__(self, cfg, dictionary):
        super().__init__()
        self.features = WordFeatures.from_config(cfg, dictionary)
        self.lstm = nn.LSTM(self.features.output_dim, cfg.hidden_size, cfg.layers,
                            batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.padding_idx = dictionary.pad()
        self.output_dim = 2 * cfg.hidden_size

    def forward(self, src_tokens: Tensor, src_lengths: Tensor) -> Tensor:
        x = self.features(src_tokens)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=src_tokens.shape[1]
        )
        return self.dropout(out)


class TaggingModel(BaseFairseqModel):
    """What the CRF energy and the tagging inference networks share: the word-encoder
    options (a :class:`TaggerEncoderConfig` and ``--no-lowercase-embeddings``), padding
    masks of ``self.padding_idx``, no length limit, and loading in fairseq's hub style."""

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        add_negated_flags(parser)

    @classmethod
    def from_pretrained(cls, model_name_or_path, checkpoint_file="model.pt",
                        data_name_or_path=".", **kwargs):
        """A :class:`~engine_plugin.hub.TaggerHubInterface` (``tag``, ``predict``) for the
        checkpoint ``model_name_or_path/checkpoint_file`` and the binarised data directory
        ``data_name_or_path`` (its dictionaries); ``kwargs`` override task options, e.g.
        ``inference="gd"``."""
        return hub.from_pretrained(cls, model_name_or_path, checkpoint_file,
                                   data_name_or_path, **kwargs)

    def padding_mask(self, src_tokens: Tensor) -> Tensor:
        """(B, T) bool, True on real words of the padded word ids ``src_tokens`` (B, T)."""
        return src_tokens.ne(self.padding_idx)

    def max_positions(self):
        return None


@register_model("blstm_crf", dataclass=TaggerEncoderConfig)
class BLSTMCRFModel(TaggingModel):
    """Energy ``E(x, y) = CRF(emissions(x), y)``; emissions are a linear map of BLSTM states.

    ``forward`` returns emissions ``(B, T, L)``; ``energy`` scores one-hot or relaxed
    labellings ``(B, T, L)``; ``crf`` holds transitions and does Viterbi / log Z.
    """

    def __init__(self, cfg, encoder, num_labels):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.padding_idx = encoder.padding_idx
        self.emission = nn.Linear(encoder.output_dim, num_labels)
        self.crf = LinearChainCRF(num_labels)

    @classmethod
    def build_model(cls, cfg, task):
        check_dictionaries(cfg, task)
        return cls(cfg, BLSTMEncoder(cfg, task.source_dictionary),
                   LabelSpace(task.target_dictionary).num_labels)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor, **unused) -> Tensor:
        """Emission scores ``(B, T, L)`` of the padded word ids ``src_tokens`` (B, T)."""
        return self.emission(self.encoder(src_tokens, src_lengths))

    def energy(self, emissions: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
        """(B,) energies of labels (B, T) or distributions (B, T, L); see ``LinearChainCRF``."""
        return self.crf.energy(emissions, labels, mask)


# The ``blstm_crf`` architecture is the config's defaults (registered with the model). A
# checkpoint stores its full model config, so these defaults never change what an existing
# checkpoint builds.
@register_model_architecture("blstm_crf", "blstm_crf_plus")
def blstm_crf_plus(args):
    apply_plus_defaults(args)
