"""The ``<unk>`` trap of character features: words missing from the word dictionary reach
the model as ``<unk>``, so a character CNN spells ``<unk>`` instead of them.

Stock ``fairseq-preprocess`` builds the word dictionary over the training split only; every
dev/test word unseen in training is then ``<unk>``. ``scripts/make_word_dict.py`` adds those
words (count 0) so that the character CNN sees their spelling.
"""

import logging
from typing import Tuple

logger = logging.getLogger(__name__)

# share of a split's words above which a model with a character CNN is warned
WARN_SHARE = 0.01
FIX = ("build the word dictionary over all splits (python scripts/make_word_dict.py "
       "RAW/train.words RAW/valid.words RAW/test.words > RAW/dict.words.txt) and binarise "
       "with fairseq-preprocess --srcdict RAW/dict.words.txt")


def count_unknown(dataset, unk: int) -> Tuple[int, int]:
    """(number of ``<unk>`` words, number of words) of a ``SentenceDataset``."""
    unknown = sum(int((dataset[i]["source"] == unk).sum()) for i in range(len(dataset)))
    return unknown, int(dataset.sizes.sum())


def warn_if_unknown(split: str, unknown: int, total: int) -> bool:
    """Logs one warning when more than ``WARN_SHARE`` of the words are ``<unk>``; returns
    whether it did."""
    if total == 0 or unknown <= WARN_SHARE * total:
        return False
    logger.warning(
        "%s: %d of %d words (%.1f%%) are <unk> in the word dictionary, so the character CNN "
        "spells <unk> instead of them: %s", split, unknown, total, 100.0 * unknown / total, FIX)
    return True


def has_char_cnn(model_cfg) -> bool:
    """Whether a tagging model config (``TaggerEncoderConfig``) has a character CNN."""
    return bool(getattr(model_cfg, "char_filters", 0))
