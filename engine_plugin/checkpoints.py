"""Loading stock fairseq checkpoints as frozen models (teachers, energies).

A frozen model is in eval mode (no dropout) and none of its parameters requires a
gradient; gradients can still flow *through* it to its inputs.

Loading goes through ``fairseq.checkpoint_utils.load_model_ensemble_and_task``, which calls
``torch.load`` without ``weights_only``. From torch 2.6 on that defaults to
``weights_only=True``, which rejects fairseq checkpoints (they pickle ``argparse.Namespace``
and other Python objects). This module does not change that default: that is done once,
for every fairseq entry point, when the plugin is imported (``engine_plugin/compat.py``).
"""

from typing import Any, Dict, Optional, Tuple

import torch.nn as nn


def freeze(model: nn.Module) -> nn.Module:
    """Puts ``model`` in eval mode and turns off ``requires_grad`` on all its parameters.

    Returns the same module, modified in place.
    """
    model.eval()
    model.requires_grad_(False)
    return model


def load_frozen_model(
    path: str,
    task=None,
    arg_overrides: Optional[Dict[str, Any]] = None,
) -> Tuple[nn.Module, Any, Any]:
    """Loads one stock fairseq checkpoint and freezes the model.

    Args:
        path: the ``.pt`` file written by ``fairseq-train`` (e.g. ``checkpoint_best.pt``).
        task: an already set-up fairseq task to build the model with. If None, the task
            stored in the checkpoint is set up, which reads its dictionaries from the
            checkpoint's ``data`` directory; pass ``arg_overrides={"data": ...}`` when the
            binarised data has moved since training.
        arg_overrides: overrides for the configuration stored in the checkpoint.

    Returns:
        ``(model, cfg, task)``: the frozen model on CPU (move it with ``.to(device)``), the
        checkpoint's configuration and the task.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    from fairseq import checkpoint_utils
    from fairseq.file_io import PathManager

    if not PathManager.exists(path):
        raise FileNotFoundError(
            f"fairseq checkpoint not found: {path!r}. Pass the path of a checkpoint written "
            "by fairseq-train (e.g. <save-dir>/checkpoint_best.pt), or train one first with "
            "`fairseq-train <data-bin> --arch transformer ... --save-dir <save-dir>`."
        )
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [path], arg_overrides=arg_overrides, task=task
    )
    return freeze(models[0]), cfg, task
