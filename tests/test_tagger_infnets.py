"""The tagging inference networks tagger_cnn / tagger_blstm / tagger_seq2seq (and their "+").

Models are built in-process from CLI-style arguments, the way fairseq-train builds them, so
that the architectures' defaults apply exactly as on the command line.
"""

import contextlib
import io
import re
import shutil

import pytest
import torch
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import engine_plugin  # noqa: F401  (registers the task and models)
from engine_plugin.models.tagger_infnets import TaggerSeq2Seq, parse_widths
from engine_plugin.tasks.sequence_labeling import SequenceLabelingConfig, SequenceLabelingTask
from examples.quickstart.make_corpus import write_corpus
from tests.cli import preprocess_tagging, run

ARCHS = ["tagger_cnn", "tagger_blstm", "tagger_seq2seq"]
SMALL = ["--embed-dim", "8", "--hidden-size", "6", "--label-embed-dim", "5"]



@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("infnets")
    write_corpus(root / "raw", {"train": 24, "valid": 8, "test": 4}, seed=4)
    preprocess_tagging(root / "raw", root / "bin")
    return root


def build(data_dir, arch, *extra):
    """(model, task, cfg) for ``fairseq-train DATA --arch ARCH EXTRA...`` (cfg is the run's)."""
    small = SMALL if arch.startswith("tagger_seq2seq") else SMALL[:4]
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(data_dir), "--task", "sequence_labeling",
                                                "--arch", arch, "--seed", "1", *small, *extra])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(1)
    return task.build_model(cfg.model), task, cfg


def valid_batch(task):
    task.load_dataset("valid")
    dataset = task.dataset("valid")
    return dataset.collater([dataset[i] for i in range(len(dataset))])


@pytest.mark.parametrize("arch", ARCHS + [a + "_plus" for a in ARCHS])
def test_logits_shape_and_batching_invariance(data, arch):
    # "+": the character features of <pad> are not zero, so this also tests the masking
    widths = ["--cnn-widths", "1,5"] if arch.startswith("tagger_cnn") else []
    model, task, _ = build(data / "bin", arch, *widths)
    net_input = valid_batch(task)["net_input"]
    tokens, lengths = net_input["src_tokens"], net_input["src_lengths"]
    assert lengths.min() < tokens.shape[1]  # the batch is padded
    model.eval()
    with torch.no_grad():
        logits = model(**net_input)
        assert logits.shape == (*tokens.shape, task.labels.num_labels)
        assert torch.equal(model.padding_mask(tokens), tokens.ne(task.source_dictionary.pad()))
        # each sentence alone, unpadded, gets the logits it gets in the padded batch
        for i, n in enumerate(lengths.tolist()):
            alone = model(tokens[i : i + 1, :n], lengths[i : i + 1])
            assert torch.allclose(alone[0], logits[i, :n], atol=1e-5), i


@pytest.mark.parametrize("arch", ARCHS)
def test_plus_architectures_add_char_cnn_and_dropout(data, arch):
    base, _, base_cfg = build(data / "bin", arch)
    plus, _, cfg = build(data / "bin", arch + "_plus")
    assert (base_cfg.model.char_filters, base_cfg.model.dropout) == (0, 0.0)
    assert (cfg.model.char_filters, cfg.model.dropout) == (200, 0.5)  # as blstm_crf_plus
    has_chars = lambda m: any(type(x).__name__ == "CharCNN" for x in m.modules())  # noqa: E731
    dropouts = lambda m: [x.p for x in m.modules() if isinstance(x, torch.nn.Dropout)]  # noqa: E731
    assert not has_chars(base) and has_chars(plus)
    assert set(dropouts(base)) == {0.0} and set(dropouts(plus)) == {0.5}
    # dropout is active in training mode only
    net_input = {"src_tokens": torch.tensor([[5, 6, 7, 8]]), "src_lengths": torch.tensor([4])}
    plus.train()
    assert not torch.equal(plus(**net_input), plus(**net_input))
    plus.eval()
    assert torch.equal(plus(**net_input), plus(**net_input))
    # and the command line overrides the architecture's defaults
    _, _, cfg = build(data / "bin", arch + "_plus", "--char-filters", "7", "--dropout", "0.2")
    assert (cfg.model.char_filters, cfg.model.dropout) == (7, 0.2)


def test_cnn_widths(data):
    model, _, _ = build(data / "bin", "tagger_cnn", "--cnn-widths", "1,5")
    assert [c.kernel_size[0] for c in model.convs] == [1, 5]
    assert all(c.out_channels == 6 for c in model.convs)
    assert model.output.in_features == 12
    # a word's logits depend on its n = 2 neighbours on each side, not further
    tokens = torch.tensor([[5, 6, 7, 8, 9, 10, 11]])
    model.eval()
    with torch.no_grad():
        before = model(tokens, torch.tensor([7]))
        tokens[0, 6] = 12
        after = model(tokens, torch.tensor([7]))
    changed = (before - after).abs().amax(dim=2)[0] > 0
    assert changed.tolist() == [False, False, False, False, True, True, True]
    for bad in ("2", "1,4", "", "a"):
        with pytest.raises(ValueError, match="cnn-widths"):
            parse_widths(bad)


def test_seq2seq_feeds_back_its_previous_argmax(data, monkeypatch):
    model, task, _ = build(data / "bin", "tagger_seq2seq")
    net_input = valid_batch(task)["net_input"]
    model.eval()
    fed = []
    model.label_embed.register_forward_hook(lambda m, inp, out: fed.append(inp[0].clone()))
    with torch.no_grad():
        logits = model(**net_input)
    num_labels = task.labels.num_labels
    assert torch.equal(fed[0], torch.full_like(fed[0], num_labels))  # the start symbol
    for t in range(1, logits.shape[1]):
        assert torch.equal(fed[t], logits[:, t - 1].argmax(-1))

    # forcing step 0 to predict label k makes step 1 read label k, and changes its logits
    k = (logits[:, 0].argmax(-1)[0].item() + 1) % num_labels
    original = model.output.forward
    calls = []

    def forced(x):
        out = original(x)
        calls.append(None)
        if len(calls) == 1:
            out = out.clone()
            out[:, k] += 100.0
        return out

    fed.clear()
    monkeypatch.setattr(model.output, "forward", forced)
    with torch.no_grad():
        forced_logits = model(**net_input)
    assert (fed[1] == k).all()
    assert not torch.allclose(forced_logits[0, 1], logits[0, 1])


def test_seq2seq_argmax_runs_in_training_too(data):
    model, task, _ = build(data / "bin", "tagger_seq2seq_plus")
    assert isinstance(model, TaggerSeq2Seq)
    fed = []
    model.label_embed.register_forward_hook(lambda m, inp, out: fed.append(inp[0].clone()))
    model.train()
    torch.manual_seed(0)
    logits = model(**valid_batch(task)["net_input"])
    assert all(torch.equal(fed[t], logits[:, t - 1].argmax(-1)) for t in range(1, len(fed)))


@pytest.mark.parametrize("arch", [a + "_plus" for a in ARCHS])
def test_gradients_reach_every_parameter(data, arch):
    model, task, _ = build(data / "bin", arch)
    batch = valid_batch(task)
    mask = model.padding_mask(batch["net_input"]["src_tokens"])
    gold = task.labels.to_labels(batch["target"])
    logits = model(**batch["net_input"])
    loss = torch.nn.functional.cross_entropy(logits[mask], gold[mask])
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_other_dictionaries_are_refused(data, tmp_path):
    # the same data with one more word in the word dictionary
    for name in ("dict.words.txt", "dict.tags.txt"):
        shutil.copy(data / "bin" / name, tmp_path / name)
    with open(tmp_path / "dict.words.txt", "a") as f:
        f.write("zebra 1\n")
    other = SequenceLabelingTask.setup_task(SequenceLabelingConfig(data=str(tmp_path)))
    for arch in ARCHS:
        _, task, cfg = build(data / "bin", arch + "_plus")
        assert cfg.model.dictionary_checksum == task.dictionary_checksum()
        # what loading the checkpoint of this run over the other data does
        with pytest.raises(ValueError, match="other word/label dictionaries"):
            other.build_model(cfg.model)


def test_fairseq_train_with_energy_loss(data, tmp_path, monkeypatch):
    pytest.importorskip("engine_plugin.criterions.energy_loss")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    common = ["--user-dir", "engine_plugin", "--task", "sequence_labeling", "--optimizer",
              "adam", "--lr", "0.01", "--batch-size", "8", "--max-epoch", "1", "--cpu",
              "--no-epoch-checkpoints", "--embed-dim", "8", "--hidden-size", "6",
              "--log-format", "simple"]
    run("train", data / "bin", *common, "--arch", "blstm_crf", "--criterion", "crf_nll",
        "--save-dir", tmp_path / "energy")
    out = run("train", data / "bin", *common, "--arch", "tagger_seq2seq_plus",
              "--char-filters", "5", "--criterion", "energy_loss",
              "--energy-path", tmp_path / "energy" / "checkpoint_last.pt",
              "--save-dir", tmp_path / "infnet")
    assert re.search(r"\| train \| epoch 001 \|.* energy -?[\d.]+", out.stdout + out.stderr)
    # the checkpoint loads back as the same model
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(tmp_path / "infnet" / "checkpoint_last.pt")])
    assert isinstance(models[0], TaggerSeq2Seq) and models[0].encoder.features.chars is not None
    batch = valid_batch(task)
    assert models[0](**batch["net_input"]).shape == (*batch["target"].shape, task.labels.num_labels)


def test_blstm_infnet_started_from_the_energy_emits_its_emissions(data, tmp_path, monkeypatch):
    """scripts/energy_to_infnet.py: the tagger_blstm built with the printed options and loaded
    from the converted checkpoint gives exactly the energy's emission scores; fine-tuning it
    with fairseq-train --finetune-from-model works; other checkpoints are refused."""
    from scripts.energy_to_infnet import main as convert

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    common = ["--user-dir", "engine_plugin", "--task", "sequence_labeling", "--optimizer",
              "adam", "--lr", "0.01", "--batch-size", "8", "--max-epoch", "1", "--cpu",
              "--no-epoch-checkpoints", "--log-format", "simple"]
    run("train", data / "bin", *common, "--arch", "blstm_crf_plus", "--criterion", "crf_nll",
        "--embed-dim", "8", "--hidden-size", "6", "--char-filters", "5",
        "--lowercase-embeddings", "--save-dir", tmp_path / "energy")
    energy_path = tmp_path / "energy" / "checkpoint_last.pt"
    out = tmp_path / "start.pt"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert convert([str(energy_path), str(out)]) == 0
    shape = printed.getvalue().split()
    assert shape == ["--embed-dim", "8", "--char-filters", "5", "--char-dim", "50",
                     "--hidden-size", "6", "--layers", "1", "--lowercase-embeddings"]

    energies, _, _ = checkpoint_utils.load_model_ensemble_and_task([str(energy_path)])
    infnet, task, _ = build(data / "bin", "tagger_blstm_plus", *shape)
    infnet.load_state_dict(torch.load(out, weights_only=False)["model"], strict=True)
    energies[0].eval()
    infnet.eval()
    net_input = valid_batch(task)["net_input"]
    with torch.no_grad():
        assert torch.equal(infnet(**net_input), energies[0](**net_input))

    proc = run("train", data / "bin", *common, "--arch", "tagger_blstm_plus", *shape,
               "--criterion", "energy_loss", "--energy-path", energy_path,
               "--finetune-from-model", out, "--save-dir", tmp_path / "infnet")
    assert f"loading pretrained model from {out}" in proc.stdout + proc.stderr

    assert convert([str(tmp_path / "infnet" / "checkpoint_last.pt"), str(tmp_path / "x.pt")]) == 2
    assert convert([str(tmp_path / "missing.pt"), str(tmp_path / "x.pt")]) == 2
