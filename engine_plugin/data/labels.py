"""Mapping between a fairseq label dictionary and CRF label indices 0..L-1.

A fairseq dictionary starts with special symbols (``<s> <pad> </s> <unk>``) and may end
with ``madeupwordNNNN`` fillers (``fairseq-preprocess --padding-factor``). Neither is a
label: the CRF scores only the real symbols in between.
"""

import hashlib

from torch import Tensor

RARE_LABEL = "*"
"""The label that stands for every label outside the kept set (``conll_to_fairseq.py
--top-k-labels``); a gold ``*`` is never counted as correctly predicted."""


class LabelSpace:
    """The real labels of a fairseq label dictionary.

    Args:
        tags_dict: the target dictionary of a tagging task.
    """

    def __init__(self, tags_dict):
        self.dict = tags_dict
        self.offset = tags_dict.nspecial
        real = [s for s in tags_dict.symbols[self.offset :] if not s.startswith("madeupword")]
        if not real:
            raise ValueError("the label dictionary has no labels")
        self.names = real  # label index -> label name
        self.num_labels = len(real)
        self.rare = real.index(RARE_LABEL) if RARE_LABEL in real else -1

    def to_labels(self, tags: Tensor) -> Tensor:
        """Dictionary indices (B, T) -> label indices in [0, L) (padding becomes negative)."""
        return tags - self.offset

    def to_tags(self, labels: Tensor) -> Tensor:
        """Label indices (B, T) -> dictionary indices."""
        return labels + self.offset

    def correct(self, predicted: Tensor, gold: Tensor, mask: Tensor) -> Tensor:
        """(B, T) bool: real tokens whose prediction equals a gold label other than
        :data:`RARE_LABEL`."""
        return (predicted == gold) & mask & (gold != self.rare)


def dictionary_checksum(*dictionaries) -> str:
    """A short digest of the symbols of dictionaries, to tell whether two runs share them."""
    digest = hashlib.sha1()
    for d in dictionaries:
        digest.update("\n".join(d.symbols).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]
