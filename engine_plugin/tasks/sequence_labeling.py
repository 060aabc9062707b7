"""The ``sequence_labeling`` task: one label per word, data binarised by fairseq-preprocess.

    fairseq-preprocess --source-lang words --target-lang tags \\
        --trainpref DIR/train --validpref DIR/valid --testpref DIR/test --destdir BIN
    fairseq-train BIN --user-dir engine_plugin --task sequence_labeling \\
        --arch blstm_crf --criterion crf_nll ...
    fairseq-generate BIN --user-dir engine_plugin --task sequence_labeling \\
        --path CKPT --inference viterbi --scoring tag_accuracy
    fairseq-interactive BIN --user-dir engine_plugin --task sequence_labeling --path CKPT
"""

import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from fairseq.data import Dictionary, data_utils
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import FairseqTask, register_task

from engine_plugin.compat import fill_model_defaults
from engine_plugin.data.labels import LabelSpace, dictionary_checksum
from engine_plugin.models.blstm_crf import check_dictionaries, require_tagging_model
from engine_plugin.data.tagging_dataset import SentenceDataset, TaggingDataset
from engine_plugin.data.unknown_words import count_unknown, has_char_cnn, warn_if_unknown
from engine_plugin.energies.crf_energy import CRFEnergy
from engine_plugin.tasks.energy_task import EnergyTaskMixin, InfnetOutput, energy_path_field
from engine_plugin.solvers.checks import check_solver_settings
from engine_plugin.solvers.options import INFERENCE_METHODS, SolverConfig, inference_field
from engine_plugin.solvers.registry import solver_for
from engine_plugin.tagging_generator import TaggingGenerator

logger = logging.getLogger(__name__)


@dataclass
class SequenceLabelingConfig(SolverConfig):
    data: Optional[str] = field(
        default=None, metadata={"help": "directory written by fairseq-preprocess"}
    )
    source_lang: str = field(
        default="words", metadata={"help": "suffix of the word files", "argparse_alias": "-s"}
    )
    target_lang: str = field(
        default="tags", metadata={"help": "suffix of the label files", "argparse_alias": "-t"}
    )
    max_source_positions: int = field(
        default=1024, metadata={"help": "longest sentence, in words"}
    )
    inference: ChoiceEnum(INFERENCE_METHODS) = inference_field("viterbi")
    energy_path: Optional[str] = energy_path_field()
    constrain_labels: bool = field(
        default=False,
        metadata={"help": "viterbi: decode only label paths that the BIO/IOB2 or BIOES scheme "
                  "of the label names allows (other label sets: every path is allowed)"},
    )
    marginal_scores: bool = field(
        default=False,
        metadata={"help": "P- lines carry log2 p(y_t = label | x), the CRF energy's marginal "
                  "of each output label (under --constrain-labels: over allowed paths), "
                  "instead of the emission scores"},
    )


@register_task("sequence_labeling", dataclass=SequenceLabelingConfig)
class SequenceLabelingTask(EnergyTaskMixin, FairseqTask):
    """Tagging with a word dictionary (source) and a label dictionary (target).

    Models are either CRF energies (``blstm_crf``, criterion ``crf_nll``) or inference
    networks (``tagger_*``, criterion ``energy_loss --energy-path CRF_CHECKPOINT``).
    """

    cfg: SequenceLabelingConfig

    def __init__(self, cfg, words_dict, tags_dict):
        check_solver_settings(cfg)
        super().__init__(cfg)
        self.words_dict, self.tags_dict = words_dict, tags_dict
        self.labels = LabelSpace(tags_dict)
        self.unknown_words = {}  # split -> (words that are <unk>, words)
        self.char_features = False  # a model with a character CNN was built
        self._warned = set()

    @classmethod
    def setup_task(cls, cfg, **kwargs):
        if not cfg.data:
            raise ValueError("sequence_labeling needs the fairseq-preprocess output directory")
        data = cfg.data.split(os.pathsep)[0]
        dicts = []
        for lang in (cfg.source_lang, cfg.target_lang):
            path = os.path.join(data, f"dict.{lang}.txt")
            if not os.path.exists(path):
                raise FileNotFoundError(
                    f"{path} not found: run fairseq-preprocess --source-lang {cfg.source_lang} "
                    f"--target-lang {cfg.target_lang} --destdir {data} first"
                )
            dicts.append(Dictionary.load(path))
        logger.info("[%s] %d words, [%s] %d symbols", cfg.source_lang, len(dicts[0]),
                    cfg.target_lang, len(dicts[1]))
        return cls(cfg, *dicts)

    @property
    def source_dictionary(self):
        return self.words_dict

    @property
    def target_dictionary(self):
        return self.tags_dict

    def dictionary_checksum(self):
        return dictionary_checksum(self.words_dict, self.tags_dict)

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        data = self.cfg.data.split(os.pathsep)[(epoch - 1) % len(self.cfg.data.split(os.pathsep))]
        src, tgt = self.cfg.source_lang, self.cfg.target_lang
        prefix = os.path.join(data, f"{split}.{src}-{tgt}.")
        loaded = {}
        for lang, dictionary in ((src, self.words_dict), (tgt, self.tags_dict)):
            loaded[lang] = data_utils.load_indexed_dataset(prefix + lang, dictionary)
            if loaded[lang] is None:
                raise FileNotFoundError(
                    f"{prefix + lang}.bin/.idx not found: binarise the {split} split with "
                    f"fairseq-preprocess --source-lang {src} --target-lang {tgt}"
                )
        self.datasets[split] = TaggingDataset(
            loaded[src], loaded[tgt], self.words_dict, self.tags_dict, prefix + src, prefix + tgt
        )
        logger.info("%s %s: %d sentences", data, split, len(self.datasets[split]))
        self.unknown_words[split] = count_unknown(self.datasets[split], self.words_dict.unk())
        self._warn_unknown_words()

    def _warn_unknown_words(self):
        """Warns once per split when a character CNN would spell many ``<unk>`` words."""
        if not self.char_features:
            return
        for split, (unknown, total) in self.unknown_words.items():
            if split not in self._warned:
                warn_if_unknown(split, unknown, total)
                self._warned.add(split)

    def build_model(self, cfg, from_checkpoint=False):
        require_tagging_model(cfg)
        # fairseq merges a base architecture's config into a copy before the model sees it:
        # record (or check) the dictionary digest on the config that is saved
        fill_model_defaults(cfg)
        check_dictionaries(cfg, self)
        model = super().build_model(cfg, from_checkpoint)
        self.char_features = self.char_features or has_char_cnn(cfg)
        self._warn_unknown_words()
        return model

    def build_tokenizer(self, args):
        """The ``--tokenizer`` splits typed sentences into words; labels are printed as they
        are (detokenising them would merge or split labels)."""
        tokenizer = super().build_tokenizer(args)
        return None if tokenizer is None else EncodeOnly(tokenizer)

    def build_bpe(self, args):
        if super().build_bpe(args) is not None:
            raise ValueError(f"--bpe {args.bpe}: sequence_labeling labels whole words, one "
                             "label per word; drop --bpe (--tokenizer still splits words)")
        return None

    def get_interactive_tokens_and_lengths(self, lines, encode_fn):
        """Word ids (n,) of each typed sentence (no EOS: one id per word to label)."""
        tokens = [self.encode_sentence(encode_fn(line)) for line in lines]
        return tokens, [len(t) for t in tokens]

    def encode_sentence(self, sentence: str):
        """Word ids (n,) of a whitespace-tokenised sentence; ``ValueError`` if it is empty
        or longer than ``--max-source-positions``."""
        ids = self.words_dict.encode_line(sentence, add_if_not_exist=False,
                                          append_eos=False).long()
        if len(ids) == 0:
            raise ValueError("an input sentence is empty: give one sentence per line, with at "
                             "least one word")
        if len(ids) > self.cfg.max_source_positions:
            raise ValueError(
                f"an input sentence has {len(ids)} words ({sentence[:40]!r}...), more than "
                f"--max-source-positions {self.cfg.max_source_positions}: split it or raise "
                "--max-source-positions"
            )
        unknown = int(ids.eq(self.words_dict.unk()).sum())
        if unknown and self.char_features:
            logger.warning("%d of %d words of %r are not in the word dictionary: the character "
                           "CNN sees <unk> for them", unknown, len(ids), sentence[:60])
        return ids

    def build_dataset_for_inference(self, src_tokens, src_lengths, constraints=None, **kwargs):
        """Unlabelled sentences ``src_tokens`` (list of (n,) word ids, no EOS)."""
        if constraints is not None:
            raise ValueError("--constraints: sequence_labeling takes no decoding constraints")
        if self.cfg.gd_oracle:
            raise ValueError("--gd-oracle picks steps by the gold labels, which typed "
                             "sentences do not have: drop --gd-oracle")
        return SentenceDataset.from_tensors(src_tokens, self.words_dict)

    def load_energy(self, path):
        return CRFEnergy.from_checkpoint(path, self)

    def infnet_forward(self, model, sample):
        src_tokens = sample["net_input"]["src_tokens"]
        mask = model.padding_mask(src_tokens)
        return InfnetOutput(model(**sample["net_input"]), mask,
                            self.labels.to_labels(sample["target"]), {})

    def max_positions(self):
        return self.cfg.max_source_positions

    def build_generator(self, models, args, **kwargs):
        if len(models) != 1:
            raise ValueError("sequence_labeling decodes with one model, not an ensemble")
        model = models[0]
        solver = solver_for(str(self.cfg.inference), "sequence_labeling", exact_available=True)
        if not solver.uses_infnet:
            if not hasattr(model, "crf"):
                raise ValueError(
                    f"--inference {self.cfg.inference} decodes with a CRF energy; --path holds "
                    f"a {type(model).__name__}: use --inference infnet|tailored|warmstart with "
                    "--energy-path CRF_CHECKPOINT for inference networks"
                )
            energy = CRFEnergy(model)
        elif not self.cfg.energy_path:
            raise ValueError(
                f"--inference {self.cfg.inference} needs --energy-path: the CRF checkpoint the "
                "inference network is measured against"
            )
        else:
            energy = self.energy_for(self.cfg.energy_path)
        return TaggingGenerator(model, energy.to(next(model.parameters()).device), self.labels,
                                self.cfg, solver, nbest=getattr(args, "nbest", 1))

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        return generator.generate(models, sample)


class EncodeOnly:
    """A fairseq tokenizer whose ``decode`` leaves text as it is (labels, not words)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def encode(self, text: str) -> str:
        return self.tokenizer.encode(text)

    def decode(self, text: str) -> str:
        return text
