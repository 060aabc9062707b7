"""Brute-force enumeration of every labelling of small CRF problems (the tests' reference)."""

import itertools

import torch

from engine_plugin.crf import LinearChainCRF


def random_problem(seed, batch=4, max_len=4, labels=3, dtype=torch.float64, scale=1.0):
    """A CRF with N(0, scale²) parameters, emissions (B, T, L) and a ragged mask whose first
    row is full. Returns (crf, emissions, mask, lengths)."""
    g = torch.Generator().manual_seed(seed)
    crf = LinearChainCRF(labels).to(dtype)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=dtype))
    emissions = scale * torch.randn(batch, max_len, labels, generator=g, dtype=dtype)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=g)
    lengths[0] = max_len
    mask = torch.arange(max_len)[None, :] < lengths[:, None]
    return crf, emissions, mask, lengths


def all_labellings(crf, emissions, lengths, b, allowed=None):
    """(labels (n,) tuple, energy) of every labelling of sentence b, or of those that
    ``allowed`` = (transitions, start, end) bool permits."""
    n = int(lengths[b])
    mask = torch.arange(emissions.shape[1])[None, :] < n
    for tags in itertools.product(range(crf.num_labels), repeat=n):
        if allowed is not None and not permitted(tags, allowed):
            continue
        padded = torch.zeros(1, emissions.shape[1], dtype=torch.long)
        padded[0, :n] = torch.tensor(tags)
        yield tags, crf.energy(emissions[b : b + 1], padded, mask)[0]


def permitted(tags, allowed) -> bool:
    transitions, start, end = allowed
    return bool(start[tags[0]] and end[tags[-1]]
                and all(transitions[a, b] for a, b in zip(tags, tags[1:])))
