"""Checkpoint files that survive a crash.

- fairseq writes ``checkpoint_last.pt`` atomically (temporary file + rename) but then
  *copies* it to ``checkpoint_best.pt`` and ``checkpointN.pt`` in place: a kill during the
  copy leaves a truncated file. :func:`atomic_copy` copies to a temporary file beside the
  destination and renames it, so the destination is always either the old or the new file.
- When the automatic resume finds ``checkpoint_last.pt`` unreadable, training restarts from
  the newest readable checkpoint of ``--save-dir`` with a warning, instead of failing.
  A checkpoint refused as unsafe is never skipped: that stops the run.
"""

import glob
import logging
import os
import shutil
import tempfile
from typing import List

from fairseq.file_io import PathManager

from engine_plugin.safe_load import UnreadableCheckpointError

logger = logging.getLogger(__name__)


def atomic_copy(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
    """Copies ``src_path`` to ``dst_path`` through a temporary file and a rename (remote
    ``scheme://`` paths go to fairseq's ``PathManager.copy`` unchanged).

    Returns True (fairseq's ``PathManager.copy`` contract). Raises ``FileExistsError`` if
    ``dst_path`` exists and ``overwrite`` is False.
    """
    if "://" in src_path or "://" in dst_path:
        return PathManager.copy(src_path, dst_path, overwrite=overwrite)
    if os.path.exists(dst_path) and not overwrite:
        raise FileExistsError(f"{dst_path} exists (pass overwrite=True to replace it)")
    directory = os.path.dirname(os.path.abspath(dst_path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dst_path) + ".", suffix=".tmp",
                               dir=directory)
    os.close(fd)
    try:
        shutil.copyfile(src_path, tmp)
        os.replace(tmp, dst_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return True


def other_checkpoints(save_dir: str, exclude: str) -> List[str]:
    """The ``checkpoint*.pt`` files of ``save_dir`` other than ``exclude``, most recently
    written first."""
    paths = [p for p in glob.glob(os.path.join(save_dir, "checkpoint*.pt"))
             if os.path.abspath(p) != os.path.abspath(exclude)]
    return sorted(paths, key=os.path.getmtime, reverse=True)


def resume_from_readable(load_checkpoint):
    """Wraps ``fairseq.checkpoint_utils.load_checkpoint(cfg, trainer, ...)`` so that an
    unreadable ``checkpoint_last.pt`` falls back to the newest readable one of
    :func:`other_checkpoints`. Each file is read once, by fairseq's own loading: an
    unreadable one moves on to the next, an unsafe one stops the run."""

    def wrapper(cfg, trainer, **passthrough_args):
        try:
            return load_checkpoint(cfg, trainer, **passthrough_args)
        except UnreadableCheckpointError as error:
            last = os.path.join(cfg.save_dir, f"checkpoint_last{trainer.checkpoint_suffix}.pt")
            if cfg.restore_file != "checkpoint_last.pt" or error.path != last:
                raise
            first = unreadable = error
        cfg.finetune_from_model = None
        for fallback in other_checkpoints(cfg.save_dir, exclude=last):
            logger.warning("%s is unreadable (%s); resuming from %s, the newest other "
                           "checkpoint", unreadable.path, unreadable, fallback)
            cfg.restore_file = fallback
            try:
                return load_checkpoint(cfg, trainer, **passthrough_args)
            except UnreadableCheckpointError as error:
                unreadable = error
        raise UnreadableCheckpointError(last, (
            f"{first} No other readable checkpoint is in {cfg.save_dir}: move "
            f"{last} away to train from scratch."
        )) from None

    return wrapper
