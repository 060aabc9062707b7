"""Loading stock fairseq checkpoints as frozen models (teachers, energies).

A frozen model is in eval mode (no dropout) and none of its parameters requires a
gradient; gradients can still flow *through* it to its inputs.

Loading goes through ``fairseq.checkpoint_utils``, which the plugin makes load safely
(``engine_plugin/safe_load.py``, applied by ``engine_plugin/compat.py`` on import). Before a
model is built, the checkpoint's model class is checked against what the caller needs, so a
wrong file gives a sentence naming it rather than an ``AttributeError`` deep in fairseq.
"""

import argparse
import functools
import hashlib
from typing import Any, Callable, Dict, Optional, Tuple

import torch
import torch.nn as nn


def freeze(model: nn.Module) -> nn.Module:
    """Puts ``model`` in eval mode and turns off ``requires_grad`` on all its parameters.

    Returns the same module, modified in place.
    """
    model.eval()
    model.requires_grad_(False)
    return model


def _field(config, name: str):
    """``config.name`` of a dict-like or attribute config (fairseq stores both), or None."""
    if config is None:
        return None
    if hasattr(config, "get") and not isinstance(config, argparse.Namespace):
        return config.get(name)
    return getattr(config, name, None)


def model_class_of(model_cfg) -> Tuple[Optional[str], Optional[type]]:
    """``(architecture, registered model class)`` of a model configuration (a checkpoint's
    ``cfg.model`` as a dict or ``DictConfig``, the ``cfg`` a task's ``build_model`` gets, or
    the ``argparse.Namespace`` of an old checkpoint): its ``arch``, else its ``_name``;
    either may be None (no architecture, or one that is not registered)."""
    from fairseq.models import ARCH_MODEL_REGISTRY

    arch = _field(model_cfg, "arch") or _field(model_cfg, "_name")
    return arch, ARCH_MODEL_REGISTRY.get(arch)


def checkpoint_model(state: dict) -> Tuple[str, str, Optional[type]]:
    """``(task name, architecture, registered model class or None)`` of a loaded
    checkpoint ``state`` (as ``fairseq.checkpoint_utils.load_checkpoint_to_cpu`` returns it)."""
    cfg = state.get("cfg")
    if cfg is not None:
        task, model = _field(_field(cfg, "task"), "_name"), _field(cfg, "model")
    else:  # checkpoints of old fairseq versions: one Namespace of all options
        model = state.get("args")
        task = _field(model, "task")
    arch, model_class = model_class_of(model)
    return task or "?", arch or "?", model_class


def require_model(path: str, state: dict, accepts: Callable[[type], bool], needed: str):
    """Raises ``ValueError`` naming ``path`` unless ``accepts`` the checkpoint's model class.

    ``needed`` completes "... but this needs ..." (e.g. "a blstm_crf energy").
    """
    task, arch, model_class = checkpoint_model(state)
    if model_class is None or not accepts(model_class):
        raise ValueError(
            f"{path} holds a {arch} model trained with --task {task}, but this needs {needed}"
        )


def weights_digest(model: nn.Module) -> str:
    """A short digest of ``model``'s parameters and buffers (names, shapes and values)."""
    digest = hashlib.sha1()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(str(tuple(tensor.shape)).encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:16]


def naming_checkpoint_in_errors(load_model_ensemble_and_task):
    """Wraps ``fairseq.checkpoint_utils.load_model_ensemble_and_task`` so that a
    ``ValueError`` raised while building a model from a checkpoint (a wrong kind of model,
    other dictionaries) names the checkpoint file."""

    @functools.wraps(load_model_ensemble_and_task)
    def wrapper(filenames, *args, **kwargs):
        try:
            return load_model_ensemble_and_task(filenames, *args, **kwargs)
        except ValueError as error:
            names = ", ".join(map(str, filenames))
            if any(str(name) in str(error) for name in filenames):
                raise
            raise ValueError(f"{names}: {error}") from None

    return wrapper


def load_frozen_model(
    path: str,
    task=None,
    arg_overrides: Optional[Dict[str, Any]] = None,
    accepts: Optional[Callable[[type], bool]] = None,
    needed: str = "",
) -> Tuple[nn.Module, Any, Any]:
    """Loads one stock fairseq checkpoint and freezes the model.

    Args:
        path: the ``.pt`` file written by ``fairseq-train`` (e.g. ``checkpoint_best.pt``).
        task: an already set-up fairseq task to build the model with. If None, the task
            stored in the checkpoint is set up, which reads its dictionaries from the
            checkpoint's ``data`` directory; pass ``arg_overrides={"data": ...}`` when the
            binarised data has moved since training.
        arg_overrides: overrides for the configuration stored in the checkpoint.
        accepts, needed: when given, the checkpoint's model class must pass ``accepts``;
            ``needed`` says what was expected (see :func:`require_model`).

    Returns:
        ``(model, cfg, task)``: the frozen model on CPU (move it with ``.to(device)``), the
        checkpoint's configuration and the task.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a fairseq checkpoint, holds the wrong kind of model, or
            does not fit ``task``; the message names ``path``.
    """
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    if not PathManager.exists(path):
        raise FileNotFoundError(
            f"fairseq checkpoint not found: {path!r}. Pass the path of a checkpoint written "
            "by fairseq-train (e.g. <save-dir>/checkpoint_best.pt), or train one first with "
            "`fairseq-train <data-bin> --arch transformer ... --save-dir <save-dir>`."
        )
    state = checkpoint_utils.load_checkpoint_to_cpu(path, arg_overrides)
    if accepts is not None:
        require_model(path, state, accepts, needed)
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [path], arg_overrides=arg_overrides, task=task, state=state
    )
    return freeze(models[0]), cfg, task
