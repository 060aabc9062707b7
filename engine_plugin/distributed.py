"""fairseq's distributed training launched by ``torchrun``, on CPUs as on GPUs.

Stock fairseq (main branch) assumes GPUs when it starts a distributed job:

- under ``torchrun`` it only reads the launcher's ``WORLD_SIZE`` / ``RANK`` when
  ``--distributed-world-size`` (default: the number of GPUs, 1 on a CPU machine) is above 1,
  so each CPU rank silently trains alone; with the size given, it divides by the number of
  GPUs (``ZeroDivisionError``);
- ``--distributed-world-size N`` without a launcher spawns one process per GPU: none on CPU;
- the default ``--ddp-backend pytorch_ddp`` passes a GPU index as ``device_ids`` to
  ``DistributedDataParallel``, which rejects it for CPU modules.

:func:`adopt_torchrun_launch` makes a ``torchrun`` launch one job of ``WORLD_SIZE`` ranks
(``gloo`` instead of ``nccl`` when there is no GPU), :func:`check_cpu_launch` stops a CPU
job that cannot start with the torchrun command that would, and
:class:`DeviceAwareDDP` leaves ``device_ids`` out for CPU modules.
"""

import logging
import os

import torch
from omegaconf import open_dict
from torch.nn.parallel import DistributedDataParallel

logger = logging.getLogger(__name__)

TORCHRUN_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")


def launched_by_torchrun() -> bool:
    """True when the environment holds a ``torchrun`` (``torch.distributed.run``) launch."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def _uses_gpu(cfg) -> bool:
    return torch.cuda.is_available() and not cfg.common.cpu


def adopt_torchrun_launch(cfg) -> None:
    """Sets ``cfg.distributed_training`` (in place) from a ``torchrun`` launch of more than
    one rank: one job of ``WORLD_SIZE`` ranks, this process being rank ``RANK``."""
    world_size = int(os.environ["WORLD_SIZE"])
    if world_size < 2:
        return
    dt = cfg.distributed_training
    with open_dict(dt):
        dt.distributed_init_method = "env://"
        dt.distributed_world_size = world_size
        dt.distributed_rank = int(os.environ["RANK"])
        dt.distributed_no_spawn = True
        dt.device_id = int(os.environ.get("LOCAL_RANK", 0)) if _uses_gpu(cfg) else 0
        if not _uses_gpu(cfg) and dt.distributed_backend == "nccl":
            logger.info("no GPU: --distributed-backend gloo instead of nccl")
            dt.distributed_backend = "gloo"


def check_cpu_launch(cfg) -> None:
    """Raises ``ValueError`` for a CPU job of several ranks that fairseq would not start
    (it spawns one process per GPU), showing the ``torchrun`` command that does."""
    dt = cfg.distributed_training
    manual = dt.distributed_init_method is not None and dt.distributed_no_spawn
    if _uses_gpu(cfg) or dt.distributed_world_size <= 1 or manual or launched_by_torchrun():
        return
    n = dt.distributed_world_size
    raise ValueError(
        f"--distributed-world-size {n} without GPUs: fairseq starts one process per GPU and "
        f"there are none. Start the {n} ranks with torchrun instead:\n"
        f"  torchrun --nproc-per-node {n} $(which fairseq-train) ARGS... "
        "--distributed-backend gloo\n"
        "(add --nnodes M --node-rank R --master-addr HOST --master-port PORT for M machines)"
    )


def launch_from_torchrun(call_main):
    """Wraps ``fairseq.distributed.utils.call_main(cfg, main, **kwargs)`` with
    :func:`adopt_torchrun_launch` and :func:`check_cpu_launch`."""

    def wrapper(cfg, main, **kwargs):
        if launched_by_torchrun() and cfg.distributed_training.distributed_init_method is None:
            adopt_torchrun_launch(cfg)
        check_cpu_launch(cfg)
        return call_main(cfg, main, **kwargs)

    return wrapper


class DeviceAwareDDP(DistributedDataParallel):
    """``DistributedDataParallel`` that ignores ``device_ids`` / ``output_device`` for a
    module on the CPU (where torch requires them to be None)."""

    def __init__(self, module, device_ids=None, output_device=None, **kwargs):
        on_cpu = all(p.device.type == "cpu" for p in module.parameters())
        if on_cpu:
            device_ids = output_device = None
        super().__init__(module, device_ids=device_ids, output_device=output_device, **kwargs)
