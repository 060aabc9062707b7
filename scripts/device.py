"""The device a benchmark runs on, chosen as the recipes choose it (``examples/common.sh``):
``DEVICE=cpu|gpu|auto`` in the environment, ``auto`` (the default) meaning the GPU when
torch sees one."""

import os
from typing import List

import torch


def use_gpu() -> bool:
    """True when ``DEVICE`` is ``gpu``, or ``auto``/unset and a CUDA device is available."""
    choice = os.environ.get("DEVICE", "auto").strip().lower()
    if choice not in ("cpu", "gpu", "auto"):
        raise ValueError(f"DEVICE must be cpu, gpu or auto, not {choice!r}")
    if choice == "gpu" and not torch.cuda.is_available():
        raise ValueError("DEVICE=gpu but torch sees no CUDA device")
    return choice == "gpu" or (choice == "auto" and torch.cuda.is_available())


def fairseq_device_flags() -> List[str]:
    """The fairseq command-line options for that device: ``["--cpu"]`` or none."""
    return [] if use_gpu() else ["--cpu"]


def synchronize() -> None:
    """Waits for the GPU's queued work (call before reading a clock); no-op on the CPU."""
    if use_gpu():
        torch.cuda.synchronize()
