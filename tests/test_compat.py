"""The fairseq fixes applied when the plugin is imported."""

import argparse

import numpy as np
import pytest
import torch

import engine_plugin  # noqa: F401  (applies the fixes)
from fairseq import checkpoint_utils
from fairseq.data import TokenBlockDataset, data_utils


def test_stock_checkpoints_with_namespaces_load(tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save({"args": argparse.Namespace(arch="lstm"), "model": {"w": torch.ones(2)}}, path)
    # what fairseq.checkpoint_utils.load_checkpoint_to_cpu calls
    state = checkpoint_utils.torch.load(str(path), map_location=torch.device("cpu"))
    assert state["args"].arch == "lstm"
    assert torch.equal(state["model"]["w"], torch.ones(2))
    # only fairseq's checkpoint loading is changed, not torch.load for everyone
    with pytest.raises(Exception, match="weights_only|Unsupported global"):
        torch.load(path)


@pytest.mark.parametrize("n", [13, 16, 1])
def test_batching_keeps_every_index(n):
    indices = np.arange(n)
    batches = data_utils.batch_by_size(indices, lambda i: 3, max_sentences=8,
                                       required_batch_size_multiple=8)
    assert sorted(int(i) for b in batches for i in b) == list(range(n))


def test_eos_break_mode_works_under_numpy_2():
    sentences = [torch.tensor([4, 5, 2]), torch.tensor([6, 2])]
    dataset = TokenBlockDataset(sentences, [3, 2], block_size=None, pad=1, eos=2,
                                break_mode="eos")
    assert len(dataset) == 2 and torch.equal(dataset[1], sentences[1])


def test_options_missing_from_an_older_checkpoint_get_their_defaults():
    from omegaconf import OmegaConf

    from engine_plugin.compat import fill_model_defaults

    saved = OmegaConf.create({"_name": "blstm_crf", "arch": "blstm_crf_plus", "hidden_size": 7})
    OmegaConf.set_struct(saved, True)
    fill_model_defaults(saved)
    assert saved.hidden_size == 7 and saved.lowercase_embeddings is False
    assert saved.word_dropout == 0.0


def test_finetuning_restarts_the_stop_time_clock(tmp_path):
    """--finetune-from-model of a checkpoint that trained for 10 hours still trains under
    --stop-time-hours 1 (stock fairseq carries the 10 hours over and stops at once)."""
    from examples.quickstart.make_corpus import write_corpus
    from tests.cli import preprocess_tagging, run

    write_corpus(tmp_path / "raw", {"train": 40, "valid": 10, "test": 10}, seed=5)
    preprocess_tagging(tmp_path / "raw", tmp_path / "bin")
    common = ["--user-dir", "engine_plugin", "--task", "sequence_labeling", "--arch", "blstm_crf",
              "--criterion", "crf_nll", "--optimizer", "adam", "--lr", "0.01", "--batch-size",
              "20", "--embed-dim", "8", "--hidden-size", "8", "--cpu", "--seed", "1",
              "--no-epoch-checkpoints", "--log-format", "simple"]
    run("train", tmp_path / "bin", *common, "--max-epoch", "1", "--save-dir", tmp_path / "a")
    path = tmp_path / "a" / "checkpoint_last.pt"
    state = checkpoint_utils.torch.load(str(path))
    state["extra_state"]["previous_training_time"] = 10 * 3600.0
    torch.save(state, path)

    proc = run("train", tmp_path / "bin", *common, "--max-epoch", "2", "--stop-time-hours", "1",
               "--finetune-from-model", path, "--save-dir", tmp_path / "b")
    out = proc.stdout + proc.stderr
    assert "Stopping training due to cumulative_training_time" not in out
    assert "epoch 002 | valid on 'valid' subset" in out
    # resuming (not fine-tuning) keeps the clock, as stock fairseq does
    proc = run("train", tmp_path / "bin", *common, "--max-epoch", "2", "--stop-time-hours", "1",
               "--save-dir", tmp_path / "a")
    out = proc.stdout + proc.stderr
    assert "Stopping training due to cumulative_training_time" in out


def test_patches_apply_once():
    """Importing the plugin twice (--user-dir and a script) must not wrap fairseq twice."""
    from fairseq.trainer import Trainer

    from engine_plugin.compat import patch_fairseq_batching, patch_fairseq_finetune_clock

    before = data_utils.batch_by_size, Trainer.load_checkpoint
    patch_fairseq_batching()
    patch_fairseq_finetune_clock()
    assert (data_utils.batch_by_size, Trainer.load_checkpoint) == before
    assert getattr(Trainer.load_checkpoint, "__wrapped__", None) is not None


def _fails_naming_the_fairseq_version(patch, *expected):
    import fairseq

    from engine_plugin.compat import FairseqVersionError

    with pytest.raises(FairseqVersionError) as error:
        patch()
    message = str(error.value)
    for text in (f"fairseq {fairseq.__version__}", "ve-fairseq==0.12.3", *expected):
        assert text in message, message


def test_a_function_with_other_parameters_is_not_wrapped(monkeypatch):
    from engine_plugin.compat import patch_fairseq_batching

    def batch_by_size(indices, max_tokens):  # not the signature the fix passes arguments by
        return [indices]

    monkeypatch.setattr(data_utils, "batch_by_size", batch_by_size)
    _fails_naming_the_fairseq_version(patch_fairseq_batching,
                                      "fairseq.data.data_utils.batch_by_size(indices, num_tokens_fn",
                                      "its parameters are (indices, max_tokens)")
    assert data_utils.batch_by_size is batch_by_size


def test_a_missing_function_is_named(monkeypatch):
    from fairseq.trainer import Trainer

    from engine_plugin.compat import patch_fairseq_finetune_clock

    monkeypatch.delattr(Trainer, "load_checkpoint")
    _fails_naming_the_fairseq_version(patch_fairseq_finetune_clock,
                                      "fairseq.trainer.Trainer.load_checkpoint(self, filename",
                                      "it does not exist")


def test_an_override_of_a_global_that_fairseq_no_longer_uses_is_refused(monkeypatch):
    """A checkpoint_utils that reads checkpoints without its global ``torch`` would bypass
    the safe loader: the fix says so rather than overriding a global nobody uses."""
    from engine_plugin.compat import patch_fairseq_checkpoint_loading

    def load_checkpoint_to_cpu(path, arg_overrides=None):
        with open(path, "rb") as f:
            return f.read()

    monkeypatch.setattr(checkpoint_utils, "torch", torch)  # as before the plugin's import
    monkeypatch.setattr(checkpoint_utils, "load_checkpoint_to_cpu", load_checkpoint_to_cpu)
    _fails_naming_the_fairseq_version(patch_fairseq_checkpoint_loading, "torch.load",
                                      "does not refer to torch, load")
    assert checkpoint_utils.torch is torch


def test_a_replaced_ddp_class_is_refused(monkeypatch):
    from fairseq.models import distributed_fairseq_model

    from engine_plugin.compat import patch_fairseq_distributed

    monkeypatch.setattr(distributed_fairseq_model, "DistributedDataParallel", object)
    _fails_naming_the_fairseq_version(patch_fairseq_distributed, "DistributedDataParallel",
                                      "not torch's DistributedDataParallel")
    assert distributed_fairseq_model.DistributedDataParallel is object
