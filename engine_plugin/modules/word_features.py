"""Word representations shared by the CRF energy and the tagging inference networks."""

import logging

import torch
import torch.nn as nn

from engine_plugin.modules.char_cnn import CharCNN

logger = logging.getLogger(__name__)


def read_embeddings(path: str):
    """Reads a word2vec/GloVe text file into ``{word: tensor}``; a "count dim" header is skipped."""
    vectors = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            pieces = line.rstrip().split(" ")
            if lineno == 1 and len(pieces) == 2 and all(p.isdigit() for p in pieces):
                continue
            try:
                vectors[pieces[0]] = torch.tensor([float(x) for x in pieces[1:]])
            except ValueError:
                raise ValueError(f"{path}:{lineno}: expected a word followed by numbers") from None
    dims = {v.numel() for v in vectors.values()}
    if len(dims) != 1:
        raise ValueError(f"{path}: vectors have different sizes {sorted(dims)}")
    return vectors


class WordFeatures(nn.Module):
    """Word embedding, optionally concatenated with character CNN features.

    Dictionary entries with count 0 (words of the dev/test files added to the dictionary so
    that the character CNN can spell them, see ``scripts/make_word_dict.py``) were never
    seen in training: unless ``embed_path`` has a vector for them, their word embedding is
    the ``<unk>`` embedding, which ``word_dropout`` trains by replacing training words with
    ``<unk>`` at random.

    Args:
        dictionary: word dictionary.
        embed_dim: word embedding size (must match the file when ``embed_path`` is set).
        embed_path: optional word2vec/GloVe text file to initialise the embeddings.
        freeze: keep the word embeddings fixed (only sensible with ``embed_path``).
        char_filters: character CNN filters; 0 disables the character CNN.
        char_dim: character embedding size.
        dropout: dropout on the characters (before the CNN) and on the output.
        word_dropout: probability of replacing a training word's embedding by ``<unk>``'s.
        lowercase: embed words by their lowercased form where that form was seen in training.
    """

    def __init__(self, dictionary, embed_dim, embed_path=None, freeze=False, char_filters=0,
                 char_dim=30, dropout=0.0, word_dropout=0.0, lowercase=False):
        super().__init__()
        self.unk, self.pad, self.word_dropout = dictionary.unk(), dictionary.pad(), word_dropout
        has_vector = torch.zeros(len(dictionary), dtype=torch.bool)
        self.embed = nn.Embedding(len(dictionary), embed_dim, padding_idx=dictionary.pad())
        nn.init.normal_(self.embed.weight, 0, embed_dim ** -0.5)
        if embed_path:
            vectors = read_embeddings(embed_path)
            found = 0
            with torch.no_grad():
                for i, word in enumerate(dictionary.symbols):
                    vec = vectors.get(word, vectors.get(word.lower()))
                    if vec is not None:
                        if vec.numel() != embed_dim:
                            raise ValueError(
                                f"{embed_path} has {vec.numel()}-d vectors; set --embed-dim "
                                f"{vec.numel()}"
                            )
                        self.embed.weight[i] = vec
                        has_vector[i] = True
                        found += 1
            logger.info("%s: vectors for %d of %d words", embed_path, found, len(dictionary))
        self.embed.weight.data[dictionary.pad()] = 0
        lookup = torch.arange(len(dictionary))
        if lowercase:
            for i, word in enumerate(dictionary.symbols[dictionary.nspecial :], dictionary.nspecial):
                j = dictionary.indices.get(word.lower(), i)
                if dictionary.count[j] > 0 or has_vector[j]:
                    lookup[i] = j
        count = torch.tensor(dictionary.count)[lookup]
        unseen = (count == 0) & ~has_vector[lookup]
        unseen[: dictionary.nspecial] = False
        lookup = lookup.masked_fill(unseen, self.unk)
        self.register_buffer("embedding_index", lookup, persistent=False)
        self.embed.weight.requires_grad_(not freeze)
        self.chars = CharCNN(dictionary, char_dim, char_filters, dropout=dropout) if char_filters else None
        self.dropout = nn.Dropout(dropout)
        self.output_dim = embed_dim + (char_filters if char_filters else 0)

    @classmethod
    def from_config(cls, cfg, dictionary):
        """Built from a ``TaggerEncoderConfig`` (the shared options of the tagging models)."""
        return cls(dictionary, cfg.embed_dim, cfg.embed_path, cfg.freeze_embeddings,
                   cfg.char_filters, cfg.char_dim, cfg.dropout, cfg.word_dropout,
                   cfg.lowercase_embeddings)

    def forward(self, tokens):
        """tokens (B, T) -> (B, T, output_dim)."""
        index = self.embedding_index[tokens]
        if self.training and self.word_dropout > 0:
            drop = torch.rand(tokens.shape, device=tokens.device) < self.word_dropout
            index = index.masked_fill(drop & tokens.ne(self.pad), self.unk)
        x = self.embed(index)
        if self.chars is not None:
            x = torch.cat([x, self.chars(tokens)], dim=-1)
        return self.dropout(x)
