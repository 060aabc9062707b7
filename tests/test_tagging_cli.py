"""End to end through the stock CLIs: fairseq-preprocess -> fairseq-train -> fairseq-generate."""

import re

import pytest
import torch

from engine_plugin.tasks.sequence_labeling import SequenceLabelingConfig, SequenceLabelingTask
from examples.quickstart.make_corpus import write_corpus
from tests.cli import preprocess_tagging, run

TRAIN_ARGS = ["--user-dir", "engine_plugin", "--task", "sequence_labeling",
              "--criterion", "crf_nll", "--optimizer", "adam", "--lr", "0.01",
              "--batch-size", "16", "--cpu", "--seed", "1", "--no-epoch-checkpoints",
              "--embed-dim", "16", "--hidden-size", "16", "--log-format", "simple"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small quickstart corpus, binarised, with a BLSTM-CRF (char CNN) trained for two epochs."""
    root = tmp_path_factory.mktemp("tagging")
    write_corpus(root / "raw", {"train": 300, "valid": 37, "test": 45}, seed=3)
    preprocess_tagging(root / "raw", root / "bin")
    # the base architecture: fairseq builds it from a merged copy of the config, the case in
    # which the dictionary digest must still reach the saved checkpoint
    run("train", root / "bin", *TRAIN_ARGS, "--arch", "blstm_crf", "--char-filters", "8",
        "--max-epoch", "2", "--save-dir", root / "ckpt")
    return root


def generate(root, *extra, data=None):
    return run("generate", data or root / "bin", "--user-dir", "engine_plugin",
               "--task", "sequence_labeling", "--path", root / "ckpt" / "checkpoint_last.pt",
               "--gen-subset", "test", "--batch-size", "16", "--cpu", *extra)


def test_generate_labels_every_sentence_and_reports_energy(trained):
    out = generate(trained, "--inference", "viterbi", "--scoring", "tag_accuracy").stdout
    hyps = {int(m.group(1)): m.group(2).split() for m in re.finditer(r"^H-(\d+)\t\S+\t(.*)$", out, re.M)}
    refs = {int(m.group(1)): m.group(2).split() for m in re.finditer(r"^T-(\d+)\t(.*)$", out, re.M)}
    # every test sentence, even though 45 is not a multiple of the batch-size multiple 8
    assert sorted(hyps) == list(range(45)) and sorted(refs) == list(range(45))
    assert all(len(hyps[i]) == len(refs[i]) for i in hyps)
    final = out.strip().splitlines()[-1]
    acc = float(re.search(r"Accuracy = ([\d.]+)", final).group(1))
    correct = sum(h == r for i in hyps for h, r in zip(hyps[i], refs[i]))
    total = sum(len(r) for r in refs.values())
    assert acc == pytest.approx(100 * correct / total, abs=0.01)
    assert acc > 60  # two epochs on this corpus are far above the ~30% of the majority label

    # the reported mean energy is that of the Viterbi paths, the minimum over labellings
    mean_energy = float(re.search(r" energy=(-?[\d.]+)", final).group(1))
    scores = [float(m.group(1)) for m in re.finditer(r"^H-\d+\t(\S+)\t", out, re.M)]
    # H- scores are -energy / ln 2 (fairseq prints scores in base 2)
    energies = torch.tensor(scores) * -torch.log(torch.tensor(2.0))
    assert energies.mean().item() == pytest.approx(mean_energy, abs=1e-3)


def test_viterbi_energy_is_below_gold_energy(trained):
    from fairseq import checkpoint_utils

    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(trained / "ckpt" / "checkpoint_last.pt")],
        arg_overrides={"data": str(trained / "bin")})
    model = models[0].eval()
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    batch = dataset.collater([dataset[i] for i in range(len(dataset))])
    with torch.no_grad():
        emissions = model(**batch["net_input"])
        mask = model.padding_mask(batch["net_input"]["src_tokens"])
        paths, best = model.crf.viterbi(emissions, mask)
        gold = task.labels.to_labels(batch["target"]).masked_fill(~mask, 0)
        assert (model.energy(emissions, gold, mask) >= best - 1e-4).all()
        assert torch.allclose(model.energy(emissions, paths, mask), best, atol=1e-4)


def test_checkpoint_with_other_dictionaries_is_refused(trained, tmp_path):
    write_corpus(tmp_path / "raw", {"train": 20, "valid": 5, "test": 5}, seed=9)
    preprocess_tagging(tmp_path / "raw", tmp_path / "bin")
    proc = run("generate", tmp_path / "bin", "--user-dir", "engine_plugin",
               "--task", "sequence_labeling", "--path", trained / "ckpt" / "checkpoint_last.pt",
               "--gen-subset", "test", "--cpu", check=False)
    assert proc.returncode != 0
    assert "other word/label dictionaries" in proc.stderr
    assert "--srcdict" in proc.stderr


def test_missing_checkpoint_is_named(trained):
    proc = run("generate", trained / "bin", "--user-dir", "engine_plugin", "--task",
               "sequence_labeling", "--path", trained / "nope.pt", "--cpu", check=False)
    assert proc.returncode != 0 and "nope.pt" in proc.stderr


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines))


@pytest.mark.parametrize("case", ["length_mismatch", "unknown_label", "empty_sentence"])
def test_bad_binarised_data_is_reported(tmp_path, case):
    raw = tmp_path / "raw"
    raw.mkdir()
    words = ["a b c", "d e", "a d"]
    tags = ["X Y X", "Y Y", "X Y"]
    for split in ("train", "valid"):
        _write(raw / f"{split}.words", words)
        _write(raw / f"{split}.tags", tags)
    test_words, test_tags = list(words), list(tags)
    if case == "length_mismatch":
        test_tags[1] = "Y Y X"
        expected = r"sentence 2 .* has 2 words but 3 labels"
    elif case == "unknown_label":
        test_tags[2] = "X Z"
        expected = r"sentence 3 of .*test\.words-tags\.tags has a label that is not in the label dictionary"
    else:
        test_words[0], test_tags[0] = "", ""
        expected = r"sentence 1 of .*test\.words-tags\.words is empty"
    _write(raw / "test.words", test_words)
    _write(raw / "test.tags", test_tags)
    preprocess_tagging(raw, tmp_path / "bin")
    task = SequenceLabelingTask.setup_task(SequenceLabelingConfig(data=str(tmp_path / "bin")))
    task.load_dataset("valid")
    with pytest.raises(ValueError, match=expected):
        task.load_dataset("test")


@pytest.fixture(scope="module")
def infnet(trained):
    """A CNN inference network trained for one epoch against the frozen CRF of ``trained``."""
    crf = trained / "ckpt" / "checkpoint_last.pt"
    before = torch.load(crf, weights_only=False)["model"]
    run("train", trained / "bin", *TRAIN_ARGS, "--arch", "tagger_cnn", "--max-epoch", "1",
        "--criterion", "energy_loss", "--energy-path", crf, "--ce-weight", "0.5", "--o2", "sx",
        "--save-dir", trained / "infnet")
    after = torch.load(crf, weights_only=False)["model"]
    return trained, before, after


def test_energy_is_frozen_and_not_saved_with_the_infnet(infnet):
    trained, before, after = infnet
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    state = torch.load(trained / "infnet" / "checkpoint_last.pt", weights_only=False)
    names = list(state["model"])
    assert names and not any("crf" in n or "emission" in n for n in names), names
    # the optimiser only ever saw the infnet's parameters
    n_params = sum(v.numel() for v in state["model"].values())
    saved = state["last_optimizer_state"]["state"]
    assert sum(s["exp_avg"].numel() for s in saved.values()) == n_params


@pytest.mark.parametrize("method", ["gd", "infnet", "tailored", "warmstart"])
def test_every_solver_runs_through_fairseq_generate(infnet, method):
    trained, _, _ = infnet
    crf = trained / "ckpt" / "checkpoint_last.pt"
    path = crf if method == "gd" else trained / "infnet" / "checkpoint_last.pt"
    extra = ["--gd-steps", "3", "--gd-lr", "1", "--tailor-steps", "2"]
    if method != "gd":
        extra += ["--energy-path", crf]
    out = run("generate", trained / "bin", "--user-dir", "engine_plugin", "--task",
              "sequence_labeling", "--path", path, "--gen-subset", "test", "--batch-size", "16",
              "--cpu", "--inference", method, "--scoring", "tag_accuracy", *extra).stdout
    final = out.strip().splitlines()[-1]
    assert f"inference={method}" in final
    assert len(re.findall(r"^H-\d+\t", out, re.M)) == 45
    search_error = float(re.search(r"search_error=([\d.]+)", final).group(1))
    assert search_error >= 0


def test_infnet_inference_needs_the_energy(infnet):
    trained, _, _ = infnet
    proc = run("generate", trained / "bin", "--user-dir", "engine_plugin", "--task",
               "sequence_labeling", "--path", trained / "infnet" / "checkpoint_last.pt",
               "--gen-subset", "test", "--cpu", "--inference", "infnet", check=False)
    assert proc.returncode != 0 and "needs --energy-path" in proc.stderr
