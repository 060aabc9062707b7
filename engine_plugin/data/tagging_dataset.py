"""Word sequences to label: aligned word/label sequences read from a stock
``fairseq-preprocess`` parallel corpus, and unlabelled sentences typed by a user."""

from typing import List

import numpy as np
import torch
from fairseq.data import FairseqDataset, data_utils
from torch import Tensor


class SentenceDataset(FairseqDataset):
    """Unlabelled sentences (``fairseq-interactive``, the hub): ``words[i]`` is a (n_i,)
    tensor of word ids without EOS.

    Args:
        words: one id tensor per sentence (or an indexed dataset, see ``TaggingDataset``).
        sizes: (N,) words per sentence.
        words_dict: the word dictionary (its padding id pads batches).
    """

    def __init__(self, words, sizes, words_dict):
        self.words, self.sizes, self.words_dict = words, np.asarray(sizes), words_dict

    def __getitem__(self, index):
        return {"id": index, "source": self.words[index]}

    def __len__(self):
        return len(self.words)

    def num_tokens(self, index):
        return int(self.sizes[index])

    def num_tokens_vec(self, indices):
        return self.sizes[indices]

    def size(self, index):
        return int(self.sizes[index])

    def ordered_indices(self):
        return np.argsort(self.sizes, kind="mergesort")

    @property
    def supports_prefetch(self):
        return False

    def collater(self, samples):
        """Right-padded batch: ``net_input.src_tokens`` is (B, T), ``src_lengths`` (B,)."""
        if not samples:
            return {}
        src = data_utils.collate_tokens([s["source"] for s in samples], self.words_dict.pad())
        lengths = torch.tensor([len(s["source"]) for s in samples], dtype=torch.long)
        return {
            "id": torch.tensor([s["id"] for s in samples], dtype=torch.long),
            "nsentences": len(samples),
            "ntokens": int(lengths.sum()),
            "net_input": {"src_tokens": src, "src_lengths": lengths},
        }

    @classmethod
    def from_tensors(cls, words: List[Tensor], words_dict) -> "SentenceDataset":
        return cls(words, [len(w) for w in words], words_dict)


class TaggingDataset(SentenceDataset):
    """Pairs of word and label sequences of equal length.

    ``fairseq-preprocess`` appends EOS to every line; it is stripped here, so position t of
    the source is the word labelled by position t of the target.

    Args:
        words, tags: indexed datasets of the same number of lines.
        words_dict, tags_dict: their fairseq dictionaries.
        words_path, tags_path: file prefixes, named in error messages.
    """

    def __init__(self, words, tags, words_dict, tags_dict, words_path, tags_path):
        super().__init__(words, np.asarray(words.sizes) - 1, words_dict)
        self.tags, self.tags_dict = tags, tags_dict
        self.words_path, self.tags_path = words_path, tags_path
        self.check_alignment()

    def check_alignment(self):
        if len(self.words) != len(self.tags):
            raise ValueError(
                f"{self.words_path} has {len(self.words)} sentences but {self.tags_path} has "
                f"{len(self.tags)}: the word and label files must have one line per sentence. "
                "Re-create them with scripts/conll_to_fairseq.py and re-run fairseq-preprocess."
            )
        word_sizes, tag_sizes = np.asarray(self.words.sizes), np.asarray(self.tags.sizes)
        bad = np.flatnonzero(word_sizes != tag_sizes)
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"sentence {i + 1} (line {i + 1} of the text files binarised into "
                f"{self.words_path} and {self.tags_path}) has {word_sizes[i] - 1} words but "
                f"{tag_sizes[i] - 1} labels ({len(bad)} sentences differ): every word needs "
                "exactly one label."
            )
        empty = np.flatnonzero(word_sizes <= 1)
        if len(empty):
            raise ValueError(
                f"sentence {int(empty[0]) + 1} of {self.words_path} is empty: remove empty "
                "lines before fairseq-preprocess."
            )
        unk = self.tags_dict.unk()
        for i in range(len(self.tags)):
            if (self.tags[i] == unk).any():
                raise ValueError(
                    f"sentence {i + 1} of {self.tags_path} has a label that is not in the label "
                    f"dictionary ({self.tags_path.rsplit('/', 1)[0]}/dict.*.txt): binarise all "
                    "splits with the training set's label dictionary (fairseq-preprocess "
                    "--tgtdict) and map rare labels to * (scripts/conll_to_fairseq.py "
                    "--top-k-labels)."
                )

    def __getitem__(self, index):
        return {"id": index, "source": self.words[index][:-1], "target": self.tags[index][:-1]}

    def collater(self, samples):
        """Right-padded batch: ``net_input.src_tokens`` and ``target`` are (B, T)."""
        batch = super().collater(samples)
        if samples:
            batch["target"] = data_utils.collate_tokens([s["target"] for s in samples],
                                                        self.tags_dict.pad())
        return batch
