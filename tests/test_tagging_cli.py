"""End to end through the stock CLIs: fairseq-preprocess -> fairseq-train -> fairseq-generate."""

import re

import pytest
import torch

from engine_plugin.report import parse_score_line
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
    score = parse_score_line(final)
    assert score.metric_name == "Accuracy"
    acc = float(score.metric)
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
    fields = parse_score_line(out.strip().splitlines()[-1]).fields
    assert fields["inference"] == method
    assert len(re.findall(r"^H-\d+\t", out, re.M)) == 45
    search_error = float(fields["search_error"])
    assert search_error >= 0


def test_infnet_inference_needs_the_energy(infnet):
    trained, _, _ = infnet
    proc = run("generate", trained / "bin", "--user-dir", "engine_plugin", "--task",
               "sequence_labeling", "--path", trained / "infnet" / "checkpoint_last.pt",
               "--gen-subset", "test", "--cpu", "--inference", "infnet", check=False)
    assert proc.returncode != 0 and "needs --energy-path" in proc.stderr


def _lines(out, prefix):
    """{sentence id: [fields after the id, one list per line]} of the PREFIX- lines."""
    found = {}
    for m in re.finditer(rf"^{prefix}-(\d+)\t(.*)$", out, re.M):
        found.setdefault(int(m.group(1)), []).append(m.group(2).split("\t"))
    return found


def test_nbest_hypotheses_and_marginal_scores(trained):
    from fairseq import checkpoint_utils

    best = _lines(generate(trained, "--inference", "viterbi").stdout, "H")
    out = generate(trained, "--inference", "viterbi", "--nbest", "3", "--beam", "3",
                   "--marginal-scores", "--scoring", "tag_accuracy").stdout
    hyps, positional = _lines(out, "H"), _lines(out, "P")
    assert sorted(hyps) == list(range(45))
    for i, ranked in hyps.items():
        assert len(ranked) == 3 and len({tags for _, tags in ranked}) == 3
        scores = [float(score) for score, _ in ranked]
        assert scores == sorted(scores, reverse=True)  # -energy: increasing energy
        assert ranked[0] == best[i][0]  # the best of the 3-best is Viterbi's labelling
    # P- lines: log2 of the CRF marginal of each output label
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(trained / "ckpt" / "checkpoint_last.pt")], arg_overrides={"data": str(trained / "bin")})
    model = models[0].eval()
    task.load_dataset("test")
    dataset = task.dataset("test")
    ids = list(range(len(dataset)))
    batch = dataset.collater([dataset[i] for i in ids])
    with torch.no_grad():
        emissions = model(**batch["net_input"])
        mask = model.padding_mask(batch["net_input"]["src_tokens"])
        marginals = model.crf.marginals(emissions, mask)
    for row, i in enumerate(batch["id"].tolist()):
        n = int(mask[row].sum())
        for rank, (_, tags) in enumerate(hyps[i]):
            labels = [task.tags_dict.index(t) - task.labels.offset for t in tags.split()]
            expected = marginals[row, torch.arange(n), torch.tensor(labels)].log2()
            printed = torch.tensor([float(x) for x in positional[i][rank][0].split()])
            assert torch.allclose(printed, expected.float(), atol=2e-4)


def _bioes(tags):
    """Quickstart tags as BIOES chunks: DET/ADJ/NOUN/PRON runs are NP, VERB is VP."""
    kinds = ["NP" if t in ("DET", "ADJ", "NOUN", "PRON") else "VP" if t == "VERB" else None
             for t in tags]
    out = []
    for i, kind in enumerate(kinds):
        if kind is None:
            out.append("O")
            continue
        first = i == 0 or kinds[i - 1] != kind
        final = i == len(kinds) - 1 or kinds[i + 1] != kind
        out.append(("S" if final else "B") if first else ("E" if final else "I"))
        out[-1] += "-" + kind
    return out


@pytest.fixture(scope="module")
def chunker(tmp_path_factory):
    """A BIOES chunking corpus (from the quickstart grammar) and a CRF trained for one epoch."""
    root = tmp_path_factory.mktemp("chunking")
    write_corpus(root / "raw", {"train": 200, "valid": 20, "test": 40}, seed=5)
    for split in ("train", "valid", "test"):
        path = root / "raw" / f"{split}.tags"
        path.write_text("".join(" ".join(_bioes(line.split())) + "\n"
                                for line in path.read_text().splitlines()))
    preprocess_tagging(root / "raw", root / "bin")
    proc = run("train", root / "bin", *TRAIN_ARGS, "--arch", "blstm_crf", "--max-epoch", "1",
               "--save-dir", root / "ckpt", "--best-checkpoint-metric", "f1",
               "--maximize-best-checkpoint-metric")
    (root / "train.log").write_text(proc.stdout + proc.stderr)
    return root


def test_crf_nll_reports_dev_span_f1_for_chunk_labels(chunker):
    from engine_plugin.scoring.tagging import precision_recall_f1, span_f1_counts

    valid = [line for line in (chunker / "train.log").read_text().splitlines()
             if "| valid |" in line][-1]
    f1 = float(re.search(r"\| f1 ([\d.]+)", valid).group(1))
    # the same F1 as conlleval's counts over a Viterbi decode of the valid split
    out = run("generate", chunker / "bin", "--user-dir", "engine_plugin", "--task",
              "sequence_labeling", "--path", chunker / "ckpt" / "checkpoint_last.pt",
              "--gen-subset", "valid", "--batch-size", "16", "--cpu").stdout
    hyps = {i: r[0][1].split() for i, r in _lines(out, "H").items()}
    refs = {i: r[0][0].split() for i, r in _lines(out, "T").items()}
    counts = span_f1_counts([refs[i] for i in sorted(refs)], [hyps[i] for i in sorted(refs)])
    assert f1 == pytest.approx(precision_recall_f1(*counts)[2], abs=0.01)


def test_constrain_labels_decodes_only_allowed_bioes_paths(chunker):
    from engine_plugin.crf.constraints import label_constraints
    from tests.crf_brute_force import permitted

    out = generate(chunker, "--inference", "viterbi", "--constrain-labels", "--nbest", "2",
                   "--beam", "2", "--scoring", "span_f1").stdout
    assert re.search(r"F1 = [\d.]+", out.strip().splitlines()[-1])
    hyps = _lines(out, "H")
    assert sorted(hyps) == list(range(40))
    names = sorted({t for ranked in hyps.values() for _, tags in ranked for t in tags.split()}
                   | {"O", "B-NP", "I-NP", "E-NP", "S-NP", "B-VP", "I-VP", "E-VP", "S-VP"})
    allowed = label_constraints(names)
    for ranked in hyps.values():
        for _, tags in ranked:
            assert permitted([names.index(t) for t in tags.split()], allowed), tags
    # without the constraints some second-best labellings are not valid BIOES
    free = _lines(generate(chunker, "--inference", "viterbi", "--nbest", "2", "--beam", "2").stdout, "H")
    assert not all(permitted([names.index(t) for t in tags.split()], allowed)
                   for ranked in free.values() for _, tags in ranked)
