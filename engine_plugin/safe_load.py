"""Safe loading of fairseq checkpoints: ``weights_only=True`` with the few globals they need.

A checkpoint is a pickle; unpickled in full (``weights_only=False``) it can run any code its
author chose. torch >= 2.6 loads with ``weights_only=True``, which accepts only tensors,
containers and an allowlist of globals. Stock fairseq checkpoints additionally hold
``argparse.Namespace`` (the ``args`` of translation models) and, when trained with
``--eval-bleu``, numpy arrays and scalars: :data:`FAIRSEQ_SAFE_GLOBALS` allows exactly those,
none of which runs code when it is rebuilt.

A file that needs any other global is refused with an error that names the file, the
global and the opt-in: setting the environment variable ``ENGINE_PLUGIN_UNSAFE_LOAD=1``
unpickles checkpoints in full, for old third-party checkpoints you trust.
"""

import argparse
import logging
import os
import pickle
import re
from typing import List

import numpy as np
import torch

logger = logging.getLogger(__name__)

UNSAFE_LOAD_ENV = "ENGINE_PLUGIN_UNSAFE_LOAD"


def _numpy_globals() -> List:
    """numpy's array/scalar rebuilders and dtypes, wherever this numpy version keeps them
    (``numpy._core`` from numpy 2 on, ``numpy.core`` before)."""
    multiarray = getattr(getattr(np, "_core", None), "multiarray", None)
    if multiarray is None:
        multiarray = np.core.multiarray
    found = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25
    for name in ("BoolDType", "Int32DType", "Int64DType", "Float32DType", "Float64DType"):
        if hasattr(dtypes, name):
            found.append(getattr(dtypes, name))
    return found


FAIRSEQ_SAFE_GLOBALS = [argparse.Namespace] + _numpy_globals()


class CheckpointError(ValueError):
    """A file that cannot be used as a fairseq checkpoint; ``path`` names it."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


class UnreadableCheckpointError(CheckpointError):
    """Not a torch checkpoint at all: truncated, empty, text, random bytes."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint that needs globals outside :data:`FAIRSEQ_SAFE_GLOBALS`."""


def unsafe_load_allowed() -> bool:
    """True when the user opted into full unpickling with ``ENGINE_PLUGIN_UNSAFE_LOAD``."""
    return os.environ.get(UNSAFE_LOAD_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _name(f) -> str:
    return str(getattr(f, "name", f))


def _unreadable(path: str, error: Exception) -> UnreadableCheckpointError:
    return UnreadableCheckpointError(path, (
        f"{path} is not a fairseq checkpoint (torch.load cannot read it: "
        f"{type(error).__name__}: {str(error).split('. ')[0]}). Pass a .pt file written by fairseq-train; a "
        "truncated file is what an interrupted copy leaves."
    ))


def _refused(path: str, error: pickle.UnpicklingError) -> CheckpointError:
    names = sorted(set(re.findall(r"GLOBAL ([\w.]+)", str(error))))
    if not names:
        return _unreadable(path, error)
    return UnsafeCheckpointError(path, (
        f"refusing to load {path}: it holds the Python global(s) {', '.join(names)}, which "
        "fairseq checkpoints do not need and which may run code when unpickled. If you "
        f"trust this file (e.g. an old third-party checkpoint), set {UNSAFE_LOAD_ENV}=1 to "
        "unpickle it in full."
    ))


def safe_torch_load(f, *args, **kwargs):
    """``torch.load`` for fairseq checkpoints: ``weights_only=True`` with
    :data:`FAIRSEQ_SAFE_GLOBALS`, unless ``ENGINE_PLUGIN_UNSAFE_LOAD=1``.

    Raises:
        CheckpointError: ``f`` is not a torch checkpoint (truncated, text, random bytes), or
            it needs a global outside the allowlist; the message names the file.
    """
    if unsafe_load_allowed():
        logger.warning("%s=1: unpickling %s in full (it can run code)", UNSAFE_LOAD_ENV, _name(f))
        kwargs["weights_only"] = False
        return torch.load(f, *args, **kwargs)
    kwargs["weights_only"] = True
    try:
        with torch.serialization.safe_globals(FAIRSEQ_SAFE_GLOBALS):
            return torch.load(f, *args, **kwargs)
    except pickle.UnpicklingError as error:
        raise _refused(_name(f), error) from None
    except OSError:
        raise  # a missing or unreadable path: its own message names it
    except Exception as error:  # noqa: BLE001 - anything torch.load fails on is not a checkpoint
        raise _unreadable(_name(f), error) from None
