#!/usr/bin/env python
"""Start a non-autoregressive transformer (e.g. ``cmlm_transformer``) from the weights of
an autoregressive ``transformer`` teacher: every parameter whose name and shape the two
share (embeddings, encoder layers, decoder attention and feed-forward layers, output
projection) is copied; what only the NAT model has (length prediction, learned positions)
keeps its fresh initialisation; a tensor of both with different shapes is an error (the
sizes must be the teacher's). Fine-tuning the result (``fairseq-train --finetune-from-model
OUT ...``) skips the long phase in which a NAT model trained from scratch ignores its source.

    python scripts/nat_from_teacher.py TEACHER.pt OUT.pt -- DATA --task translation_lev \\
        --arch cmlm_transformer [the NAT model's fairseq-train options]

The options after ``--`` are those the NAT model will be trained with (at least its data,
task, architecture and sizes): the model is built from them, as fairseq-train builds it.
Prints how many tensors were copied and the names of those that were not.
"""

import argparse
import os
import sys
from typing import Dict, List, Tuple

import torch

import engine_plugin  # noqa: F401  (loads stock checkpoints under torch >= 2.6)
from fairseq import checkpoint_utils, options, tasks
from omegaconf import OmegaConf
from fairseq.dataclass.utils import convert_namespace_to_omegaconf


def transfer(teacher: Dict[str, torch.Tensor],
             student: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """``student`` with every tensor of the same name in ``teacher`` copied in.

    Returns:
        the new state dict and the names of the student's tensors the teacher does not have
        (left as they were).

    Raises:
        ValueError: a tensor of both has different shapes (the models' sizes differ).
    """
    state, kept, misfits = {}, [], []
    for name, value in student.items():
        source = teacher.get(name)
        if source is None:
            state[name] = value
            kept.append(name)
        elif source.shape != value.shape:
            misfits.append(f"{name} {tuple(source.shape)} vs {tuple(value.shape)}")
        else:
            state[name] = source.clone()
    if misfits:
        raise ValueError("the teacher's sizes differ from the NAT model's (give it the "
                         "teacher's --encoder-layers, --encoder-embed-dim, "
                         "--encoder-ffn-embed-dim, ...): " + "; ".join(misfits[:3]))
    return state, kept


def build_model(train_args: List[str]):
    """The model ``fairseq-train TRAIN_ARGS`` would build, and its config."""
    parser = options.get_training_parser()
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(parser, train_args))
    task = tasks.setup_task(cfg.task)
    return task.build_model(cfg.model), cfg


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: nat_from_teacher.py TEACHER.pt OUT.pt -- DATA --task translation_lev "
              "--arch cmlm_transformer [options]", file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", help="checkpoint of a stock transformer translation model")
    parser.add_argument("out", help="checkpoint to write, for --finetune-from-model")
    args = parser.parse_args(argv[:split])
    if not os.path.isfile(args.teacher):
        print(f"error: no teacher checkpoint {args.teacher}", file=sys.stderr)
        return 2
    model, cfg = build_model(argv[split + 1:])
    state = checkpoint_utils.load_checkpoint_to_cpu(args.teacher)
    try:
        student, kept = transfer(state["model"], model.state_dict())
    except ValueError as error:
        print(f"error: {args.teacher} does not fit the {cfg.model._name} model: {error}",
              file=sys.stderr)
        return 2
    copied = len(student) - len(kept)
    # a plain container, as fairseq's trainer saves it (a DictConfig would need unsafe loading)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    state.update(model=student, cfg=config, last_optimizer_state=None)
    tmp = args.out + ".tmp"
    checkpoint_utils.torch_persistent_save(state, tmp)
    os.replace(tmp, args.out)
    print(f"copied {copied} of {len(student)} tensors from {args.teacher}; "
          f"initialised afresh: {' '.join(kept) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
