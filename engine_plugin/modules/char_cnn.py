"""Character CNN word embeddings (Ma & Hovy 2016), computed per dictionary entry."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def spell_dictionary(dictionary, max_chars: int):
    """Character ids of every dictionary entry.

    Returns ``(chars, alphabet)``: ``chars`` is a ``(V, max_chars)`` long tensor (0 = padding,
    1 = the marker of a special symbol such as ``<unk>``, 2.. = characters in ``alphabet``
    order); words longer than ``max_chars`` keep their first ``max_chars`` characters.
    The alphabet is the sorted set of characters in the dictionary, so the same dictionary
    always gives the same ids.
    """
    special = set(dictionary.symbols[: dictionary.nspecial])
    words = [w for w in dictionary.symbols if w not in special]
    alphabet = sorted({c for w in words for c in w})
    index = {c: i + 2 for i, c in enumerate(alphabet)}
    chars = torch.zeros(len(dictionary), max_chars, dtype=torch.long)
    for i, word in enumerate(dictionary.symbols):
        ids = [1] if word in special else [index[c] for c in word[:max_chars]]
        chars[i, : len(ids)] = torch.tensor(ids)
    return chars, alphabet


class CharCNN(nn.Module):
    """Max-pooled character convolution over the spelling of each dictionary entry.

    Args:
        dictionary: the word dictionary; spellings are taken from its symbols.
        char_dim: character embedding size (paper: 30).
        filters: number of convolution filters = output size.
        width: filter width in characters (paper: 3).
        max_chars: longest spelling kept.
        dropout: applied to character embeddings before the convolution (paper: 0.5).
    """

    def __init__(self, dictionary, char_dim=30, filters=30, width=3, max_chars=30, dropout=0.0):
        super().__init__()
        chars, alphabet = spell_dictionary(dictionary, max_chars)
        self.register_buffer("spellings", chars, persistent=False)
        self.embed = nn.Embedding(len(alphabet) + 2, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, filters, width, padding=width // 2)
        self.dropout = dropout
        self.output_dim = filters

    def forward(self, tokens):
        """tokens (B, T) word ids -> (B, T, filters) character features."""
        chars = self.spellings[tokens]  # (B, T, C)
        b, t, c = chars.shape
        x = F.dropout(self.embed(chars.view(b * t, c)), self.dropout, self.training)
        h = self.conv(x.transpose(1, 2))  # (B*T, filters, C)
        h = h.masked_fill((chars.view(b * t, 1, c) == 0), float("-inf"))
        return h.max(dim=2).values.view(b, t, -1)
