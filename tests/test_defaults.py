"""The registered defaults of the "+" architectures are the tuned recipe settings, and they
never change what an existing checkpoint builds."""

import re

import pytest
import torch
from fairseq import options

import engine_plugin  # noqa: F401
from tests.cli import run

# the Twitter POS recipe's BLSTM-CRF+ (RESULTS.md, tuning run C): the flags the recipe
# used to pass to the plain architectures, each an option name and its value (or none)
RECIPE_FLAGS = [["--hidden-size", "200"], ["--embed-dim", "50"], ["--char-filters", "200"],
                ["--char-dim", "50"], ["--word-dropout", "0.4"], ["--lowercase-embeddings"],
                ["--dropout", "0.5"]]
RECIPE = [flag[0][2:].replace("-", "_") for flag in RECIPE_FLAGS]  # the options they set
PLUS_ARCHS = ["blstm_crf_plus", "tagger_cnn_plus", "tagger_blstm_plus", "tagger_seq2seq_plus"]


def parsed(arch, *extra):
    parser = options.get_training_parser()
    return options.parse_args_and_arch(parser, [
        "BIN", "--user-dir", "engine_plugin", "--task", "sequence_labeling", "--arch", arch,
        "--criterion", "crf_nll", *extra])


@pytest.mark.parametrize("arch", PLUS_ARCHS)
@pytest.mark.parametrize("option", RECIPE)
def test_plus_default_is_the_recipe_setting(arch, option):
    """``ARCH_plus`` alone sets what ``ARCH`` with the recipe's flags set."""
    recipe = parsed(arch[:-len("_plus")], *(part for flag in RECIPE_FLAGS for part in flag))
    assert getattr(parsed(arch), option) == getattr(recipe, option)


def test_plain_architecture_keeps_its_defaults():
    args = parsed("blstm_crf")
    assert not any(hasattr(args, option) for option in RECIPE)  # the dataclass fills them


def test_command_line_overrides_the_defaults_both_ways():
    args = parsed("blstm_crf_plus", "--hidden-size", "7", "--no-lowercase-embeddings")
    assert (args.hidden_size, args.lowercase_embeddings, args.char_filters) == (7, False, 200)
    assert parsed("blstm_crf", "--lowercase-embeddings").lowercase_embeddings is True


def test_checkpoint_saved_before_the_new_defaults_decodes_identically(quickstart, tmp_path):
    """A blstm_crf_plus checkpoint whose config lacks the options whose architecture default
    changed (as a checkpoint saved before those options existed) still builds the model it
    was trained as - the dataclass's values, not the new architecture defaults - and
    fairseq-generate prints the same hypotheses."""
    state = torch.load(quickstart.energy, weights_only=False)
    model_cfg = state["cfg"]["model"]  # fairseq saves the config as a plain dict
    assert model_cfg["_name"] == "blstm_crf_plus"
    for option in ("char_dim", "word_dropout", "lowercase_embeddings"):
        del model_cfg[option]
    old = tmp_path / "old.pt"
    torch.save(state, old)

    def hypotheses(path):
        out = run("generate", quickstart.bin, "--user-dir", "engine_plugin", "--task",
                  "sequence_labeling", "--path", path, "--gen-subset", "test", "--cpu").stdout
        return re.findall(r"^H-.*$", out, re.M)

    new = hypotheses(quickstart.energy)
    assert len(new) == quickstart.n_test and hypotheses(old) == new
