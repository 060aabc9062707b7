"""Fixes for running stock fairseq on torch >= 2.6, applied when the plugin is imported.

Checkpoints
-----------
torch 2.6 changed ``torch.load`` to ``weights_only=True`` by default. fairseq checkpoints are
pickles that hold ``argparse.Namespace`` objects, omegaconf containers and numpy scalars, so
every stock checkpoint then fails to load. fairseq reads checkpoints only through
``fairseq.checkpoint_utils``; we give that module (and only it) a ``torch`` whose ``load``
defaults to ``weights_only=False``, the behaviour fairseq was written for. Loading a checkpoint
executes its pickle: load only checkpoints you trust, as with any fairseq checkpoint.

Batching
--------
fairseq's main branch (the Python 3.11 builds) drops the last batch whenever its size is not a
multiple of ``--required-batch-size-multiple`` (default 8), so ``fairseq-generate`` and
validation silently skip up to 7 sentences of every split. We give the dropped sentences back
as a final, smaller batch, as fairseq 0.12.2 did.
"""

import functools
import types

import numpy as np
import torch
from fairseq import checkpoint_utils
from fairseq.data import data_utils


class _TorchForFairseqCheckpoints(types.ModuleType):
    """Forwards every attribute to ``torch``; ``load`` defaults to ``weights_only=False``."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, *args, **kwargs):
        kwargs.setdefault("weights_only", False)
        return torch.load(f, *args, **kwargs)


def patch_fairseq_checkpoint_loading():
    """Makes ``fairseq.checkpoint_utils`` load stock checkpoints under torch >= 2.6."""
    if not isinstance(checkpoint_utils.torch, _TorchForFairseqCheckpoints):
        checkpoint_utils.torch = _TorchForFairseqCheckpoints()


def _keep_last_batch(batch_by_size):
    @functools.wraps(batch_by_size)
    def wrapper(indices, *args, **kwargs):
        batches = batch_by_size(indices, *args, **kwargs)
        if kwargs.get("fixed_shapes") is not None:
            return batches
        n_batched = sum(len(b) for b in batches)
        if n_batched < len(indices):
            batches = list(batches) + [np.asarray(indices[n_batched:], dtype=np.int64)]
        return batches

    wrapper.keeps_last_batch = True
    return wrapper


def patch_fairseq_batching():
    """Makes ``fairseq.data.data_utils.batch_by_size`` keep every index."""
    if not getattr(data_utils.batch_by_size, "keeps_last_batch", False):
        data_utils.batch_by_size = _keep_last_batch(data_utils.batch_by_size)
