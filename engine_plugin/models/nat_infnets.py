"""ENGINE's translation inference networks (Tu et al., 2020, §4.3), as fairseq NAT models.

Both read the source, predict a target length, and give logits for every position of a
decoder input in fairseq's NAT layout ``[bos y_1 .. y_n eos]``; the ``translation_energy``
task feeds them fully masked inputs (``<unk>`` on ``y``, fairseq's CMLM mask symbol) and
scores the logits of the ``n`` middle positions with a frozen autoregressive energy. Both
implement fairseq's NAT interface (``forward_encoder``, ``initialize_output_tokens``,
``forward_decoder``, ``regenerate_length_beam``), so the stock
``IterativeRefinementGenerator`` decodes them: ``--iter-decode-max-iter 0`` is one
non-autoregressive pass, ``--iter-decode-with-beam K`` decodes the ``K`` most likely lengths.

- ``cmlm_infnet``: stock ``cmlm_transformer`` (Ghazvininejad et al., 2019), unchanged, under
  ENGINE's name. Its parameters are exactly a ``cmlm_transformer``'s, so
  ``--finetune-from-model CMLM_CHECKPOINT`` starts it from a CMLM baseline (as the paper
  does), and mask-predict refinement (``--iter-decode-max-iter 10``) still works.
- ``bilstm_infnet``: the paper's BiLSTM "tagger": source word embeddings copied uniformly to
  the target length (fairseq's ``--src-embedding-copy`` assignment), a 2-layer BiLSTM and a
  linear layer to the target vocabulary. Its length predictor is fairseq's (a softmax over
  256 lengths from mean-pooled source features), always predicting the offset from the
  source length (stock ``--pred-length-offset``): mean-pooled embeddings carry no length.
"""

import torch.nn as nn
import torch.nn.functional as F
from fairseq import utils
from fairseq.models import (
    FairseqDecoder,
    FairseqEncoder,
    register_model,
    register_model_architecture,
)
from fairseq.models.nat import NATransformerModel
from fairseq.models.nat.cmlm_transformer import CMLMNATransformerModel, cmlm_base_architecture
from fairseq.models.nat.nonautoregressive_transformer import NATransformerDecoder
from fairseq.models.transformer import Embedding


@register_model("cmlm_infnet")
class CMLMInfnet(CMLMNATransformerModel):
    """ENGINE's CMLM inference network: stock ``cmlm_transformer``.

    The energy needs logits for all ``T`` positions of the decoder input, which the stock
    ``forward`` already returns (``out["word_ins"]["out"]``, (B, T, V)); so does its length
    prediction (``out["length"]``). Nothing is overridden but ``from_pretrained``'s
    decoding defaults: the registered name and architectures are ENGINE's, the model is
    fairseq's.
    """

    @classmethod
    def from_pretrained(cls, model_name_or_path, checkpoint_file="model.pt",
                        data_name_or_path=".", **kwargs):
        """Stock fairseq's ``GeneratorHubInterface`` (``translate``), decoding as ENGINE does:
        one pass (``iter_decode_max_iter=0``) over a beam of 3 predicted lengths, unless
        ``generation_args`` says otherwise. ``length_select="energy",
        energy_path=TEACHER`` picks the length by teacher energy; ``bpe="subword_nmt",
        bpe_codes=CODES`` segments the input and joins the output."""
        generation = {"iter_decode_max_iter": 0, "iter_decode_with_beam": 3,
                      **kwargs.pop("generation_args", {})}
        return super().from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path,
                                       generation_args=generation, **kwargs)


@register_model_architecture("cmlm_infnet", "cmlm_infnet")
def cmlm_infnet(args):
    """The paper's CMLM: 6 layers per stack, 8 heads, model dimension 512, hidden 2048."""
    cmlm_base_architecture(args)


class SourceEmbedding(FairseqEncoder):
    """Embeds the source; its output has the layout of fairseq's NAT encoders.

    ``encoder_out`` (S, B, C) and ``encoder_embedding`` (B, S, C) both hold the (dropped-
    out) word embeddings of the source, right-padded whatever the task's padding side, with
    ``encoder_padding_mask`` (B, S) True on padding.
    """

    def __init__(self, dictionary, embed_tokens: nn.Embedding, dropout: float):
        super().__init__(dictionary)
        self.embed_tokens = embed_tokens
        self.padding_idx = embed_tokens.padding_idx
        self.dropout = nn.Dropout(dropout)

    def forward(self, src_tokens, src_lengths=None, **unused):
        src_tokens = utils.convert_padding_direction(src_tokens, self.padding_idx,
                                                     left_to_right=True)
        x = self.dropout(self.embed_tokens(src_tokens))
        return {
            "encoder_out": [x.transpose(0, 1)],
            "encoder_padding_mask": [src_tokens.eq(self.padding_idx)],
            "encoder_embedding": [x],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [],
        }

    def reorder_encoder_out(self, encoder_out, new_order):
        return {
            "encoder_out": [encoder_out["encoder_out"][0].index_select(1, new_order)],
            "encoder_padding_mask": [
                encoder_out["encoder_padding_mask"][0].index_select(0, new_order)
            ],
            "encoder_embedding": [encoder_out["encoder_embedding"][0].index_select(0, new_order)],
            "encoder_states": [],
            "src_tokens": [],
            "src_lengths": [],
        }


class BiLSTMTagger(FairseqDecoder):
    """Copied source embeddings -> ``layers``-layer BiLSTM -> linear layer to ``V``.

    Only the padding pattern of ``prev_output_tokens`` is read (its length ``T_b`` per row),
    never its tokens: masked and unmasked inputs give the same logits.
    """

    def __init__(self, args, dictionary, embed_dim: int):
        super().__init__(dictionary)
        self.padding_idx = dictionary.pad()
        self.lstm = nn.LSTM(
            embed_dim, args.hidden_size, num_layers=args.layers, bidirectional=True,
            batch_first=True, dropout=args.dropout if args.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(args.dropout)
        self.output_projection = nn.Linear(2 * args.hidden_size, len(dictionary))
        # what NATransformerDecoder's length prediction reads
        self.embed_length = Embedding(256, embed_dim, None)
        self.length_loss_factor = args.length_loss_factor
        self.pred_length_offset = True
        self.sg_length_pred = False
        self.ensemble_models = None

    # fairseq's length prediction and uniform source copy, shared with the NAT transformer
    forward_length = NATransformerDecoder.forward_length
    forward_length_prediction = NATransformerDecoder.forward_length_prediction
    forward_copying_source = NATransformerDecoder.forward_copying_source

    def forward(self, normalize, encoder_out, prev_output_tokens, step=0, **unused):
        """(B, T, V) logits (log-probabilities if ``normalize``) for ``prev_output_tokens``
        (B, T), right-padded; rows at padded positions carry no meaning."""
        target_mask = prev_output_tokens.ne(self.padding_idx)
        x = self.forward_copying_source(
            encoder_out["encoder_embedding"][0], ~encoder_out["encoder_padding_mask"][0],
            target_mask,
        )
        packed = nn.utils.rnn.pack_padded_sequence(
            x, target_mask.sum(1).cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = self.lstm(packed)
        h, _ = nn.utils.rnn.pad_packed_sequence(h, batch_first=True, total_length=x.size(1))
        logits = self.output_projection(self.dropout(h))
        return F.log_softmax(logits, -1) if normalize else logits


@register_model("bilstm_infnet")
class BiLSTMInfnet(CMLMNATransformerModel):
    """ENGINE's BiLSTM inference network with fairseq's NAT length prediction and decoding.

    CMLM's decoding (``forward_decoder`` fills the ``<unk>`` positions and keeps BOS/EOS)
    and the NAT transformer's length handling are inherited; only the networks differ.
    """

    # the NAT transformer's forward: CMLM's only adds a check of a transformer-only option
    forward = NATransformerModel.forward

    @property
    def allow_ensemble(self):
        return False

    @staticmethod
    def add_args(parser):
        parser.add_argument("--embed-dim", type=int, metavar="N",
                            help="source word embedding size")
        parser.add_argument("--hidden-size", type=int, metavar="N",
                            help="BiLSTM hidden size per direction")
        parser.add_argument("--layers", type=int, metavar="N", help="BiLSTM layers")
        parser.add_argument("--dropout", type=float, metavar="D",
                            help="dropout on embeddings, between layers and before the output")
        parser.add_argument("--length-loss-factor", type=float, metavar="W",
                            help="weight of the length prediction loss")

    @classmethod
    def build_model(cls, args, task):
        bilstm_infnet(args)  # defaults for options a checkpoint may predate
        src_dict = task.source_dictionary
        embed = Embedding(len(src_dict), args.embed_dim, src_dict.pad())
        encoder = SourceEmbedding(src_dict, embed, args.dropout)
        decoder = BiLSTMTagger(args, task.target_dictionary, args.embed_dim)
        return cls(args, encoder, decoder)


@register_model_architecture("bilstm_infnet", "bilstm_infnet")
def bilstm_infnet(args):
    """A 2-layer BiLSTM of 512 units per direction over 512-dimensional embeddings."""
    args.embed_dim = getattr(args, "embed_dim", 512)
    args.hidden_size = getattr(args, "hidden_size", 512)
    args.layers = getattr(args, "layers", 2)
    args.dropout = getattr(args, "dropout", 0.1)
    args.length_loss_factor = getattr(args, "length_loss_factor", 0.1)
