#!/usr/bin/env python
"""Turn a BLSTM-CRF energy checkpoint into a ``tagger_blstm`` inference-network checkpoint
that starts where the energy's own emissions are: the same word features and BLSTM, the
emission layer as the output layer, the CRF transitions left out. Fine-tuning it against the
energy (``fairseq-train --finetune-from-model OUT --criterion energy_loss ...``) starts from
"argmax of the emission scores" and only has to learn what the transitions add.

    python scripts/energy_to_infnet.py ENERGY.pt OUT.pt

Prints the fairseq-train options the inference network must be built with (its word
features and BLSTM sizes must equal the energy's, or loading OUT.pt fails).
"""

import argparse
import os
import sys
from typing import Dict, List

import torch

import engine_plugin  # noqa: F401  (loads stock checkpoints under torch >= 2.6)
from engine_plugin.models.blstm_crf import BLSTMCRFModel
from fairseq import checkpoint_utils
from fairseq.models import ARCH_MODEL_REGISTRY
from omegaconf import OmegaConf

# options of the energy's encoder that the inference network has to share
SHAPE_OPTIONS = ("embed_dim", "char_filters", "char_dim", "hidden_size", "layers")


def infnet_state(energy_model: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The energy's ``encoder.*`` as is, ``emission.*`` as ``output.*``; ``crf.*`` dropped."""
    state = {}
    for key, value in energy_model.items():
        if key.startswith("encoder."):
            state[key] = value
        elif key.startswith("emission."):
            state["output." + key[len("emission."):]] = value
        elif not key.startswith("crf."):
            raise ValueError(f"unexpected parameter {key} in a blstm_crf energy")
    return state


def infnet_options(model_cfg) -> List[str]:
    """fairseq-train options that give a ``tagger_blstm`` the energy's shapes."""
    options = []
    for name in SHAPE_OPTIONS:
        options += ["--" + name.replace("_", "-"), str(getattr(model_cfg, name))]
    lowercase = getattr(model_cfg, "lowercase_embeddings", False)
    options.append("--lowercase-embeddings" if lowercase else "--no-lowercase-embeddings")
    return options


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("energy", help="blstm_crf / blstm_crf_plus checkpoint")
    parser.add_argument("out", help="checkpoint to write, for --finetune-from-model")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.energy):
        print(f"error: no energy checkpoint {args.energy}", file=sys.stderr)
        return 2
    state = checkpoint_utils.load_checkpoint_to_cpu(args.energy)
    model_cfg = state["cfg"].model
    arch = getattr(model_cfg, "_name", None)
    if ARCH_MODEL_REGISTRY.get(arch) is not BLSTMCRFModel:
        print(f"error: {args.energy} is a {arch} checkpoint, not a "
              "blstm_crf energy: only BLSTM-CRF energies have emissions a tagger_blstm can "
              "start from", file=sys.stderr)
        return 2
    state["model"] = infnet_state(state["model"])
    state["last_optimizer_state"] = None  # the energy's optimiser does not fit the infnet
    # a plain container, as fairseq's trainer saves it (a DictConfig would need unsafe loading)
    state["cfg"] = OmegaConf.to_container(state["cfg"], resolve=True, enum_to_str=True)
    tmp = args.out + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, args.out)
    print(" ".join(infnet_options(model_cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
