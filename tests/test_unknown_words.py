"""The <unk> warning: a character CNN that would spell <unk> for many words says so."""

import subprocess
import sys

import pytest

import engine_plugin  # noqa: F401  (registers the task; loads checkpoints)

from examples.quickstart.make_corpus import write_corpus
from tests.cli import ROOT, preprocess_tagging, run

WARNING = "are <unk> in the word dictionary, so the character CNN spells <unk>"


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    """A quickstart corpus whose valid and test words are never seen in training (each word
    gets a suffix), binarised with the plain fairseq dictionary and with make_word_dict.py."""
    root = tmp_path_factory.mktemp("unseen")
    raw = root / "raw"
    write_corpus(raw, {"train": 60, "valid": 12, "test": 12}, seed=4)
    for split in ("valid", "test"):
        path = raw / f"{split}.words"
        path.write_text("".join(" ".join(w + "s" for w in line.split()) + "\n"
                                for line in path.read_text().splitlines()))
    preprocess_tagging(raw, root / "plain")
    with open(raw / "dict.words.txt", "w") as f:
        subprocess.run([sys.executable, "scripts/make_word_dict.py", raw / "train.words",
                        raw / "valid.words", raw / "test.words"], cwd=ROOT, stdout=f, check=True)
    preprocess_tagging(raw, root / "full", "--srcdict", raw / "dict.words.txt")
    return root


def build(data, *arch):
    """The task and an (untrained) model, as fairseq-train builds them."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(data), "--user-dir", "engine_plugin", "--task", "sequence_labeling", *arch,
        "--embed-dim", "4", "--hidden-size", "4", "--criterion", "crf_nll"])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    return task, cfg


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]


def test_warns_at_training_and_generation_with_the_plain_dictionary(unseen, caplog):
    from fairseq import checkpoint_utils

    train = run("train", unseen / "plain", "--user-dir", "engine_plugin", "--task",
                "sequence_labeling", "--arch", "blstm_crf", "--char-filters", "4",
                "--embed-dim", "4", "--hidden-size", "4", "--criterion", "crf_nll",
                "--optimizer", "adam", "--lr", "0.01", "--batch-size", "30", "--max-epoch", "1",
                "--cpu", "--log-format", "simple", "--save-dir", unseen / "crf",
                "--no-epoch-checkpoints")
    log = (train.stdout + train.stderr).splitlines()
    valid_line = next(line for line in log if WARNING in line)
    assert "valid: " in valid_line and "(100.0%)" in valid_line
    assert "scripts/make_word_dict.py" in valid_line
    assert not any("train: " in line for line in log if WARNING in line)
    # fairseq-generate's order: the model first, then the split
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(unseen / "crf" / "checkpoint_last.pt")])
    task.load_dataset("test")
    task.load_dataset("test")
    assert len(warnings_of(caplog)) == 1  # once per split
    assert warnings_of(caplog)[0].startswith("test: ") and "(100.0%)" in warnings_of(caplog)[0]


@pytest.mark.parametrize("data, arch", [
    ("full", ["--arch", "blstm_crf", "--char-filters", "4"]),  # make_word_dict.py
    ("plain", ["--arch", "blstm_crf"]),  # no character CNN
])
def test_silent_with_make_word_dict_or_without_a_char_cnn(unseen, caplog, data, arch):
    task, cfg = build(unseen / data, *arch)
    task.load_dataset("valid")
    task.build_model(cfg.model)
    task.load_dataset("test")
    assert warnings_of(caplog) == []


def test_share_is_counted_over_words(unseen, caplog):
    task, cfg = build(unseen / "plain", "--arch", "blstm_crf", "--char-filters", "4")
    task.load_dataset("train")
    task.load_dataset("valid")
    task.build_model(cfg.model)
    assert task.unknown_words["train"][0] == 0
    unknown, total = task.unknown_words["valid"]
    assert unknown == total == sum(len(line.split()) for line in
                                   open(unseen / "raw" / "valid.words"))
    assert [f"valid: {total} of {total} words (100.0%)" in m for m in warnings_of(caplog)] == [True]
