"""The Python API: ``from_pretrained`` -> ``tag`` / ``predict`` for taggers, as fairseq's hub."""

import itertools
import math
import re

import pytest
import torch

from engine_plugin.crf import LinearChainCRF
from engine_plugin.models.blstm_crf import BLSTMCRFModel
from engine_plugin.models.tagger_infnets import TaggerCNN
from tests.cli import run


@pytest.fixture(scope="module")
def tagger(quickstart):
    return BLSTMCRFModel.from_pretrained(str(quickstart.root / "crf"),
                                         checkpoint_file="checkpoint_last.pt",
                                         data_name_or_path=str(quickstart.bin))


@pytest.fixture(scope="module")
def generated(quickstart):
    """{sentence: (labels, H- score)} of fairseq-generate on the test split."""
    out = run("generate", quickstart.bin, "--user-dir", "engine_plugin", "--task",
              "sequence_labeling", "--path", quickstart.energy, "--gen-subset", "test",
              "--cpu").stdout
    sources = dict(re.findall(r"^S-(\d+)\t(.*)$", out, re.M))
    return {sources[i]: (labels.split(), float(score))
            for i, score, labels in re.findall(r"^H-(\d+)\t(\S+)\t(.*)$", out, re.M)}


def test_tag_returns_what_fairseq_generate_returns(tagger, generated):
    sentences = sorted(generated)
    assert len(sentences) > 10
    assert tagger.tag(sentences) == [generated[s][0] for s in sentences]
    assert tagger.tag(sentences[0]) == generated[sentences[0]][0]
    # the energy is the H- score (−E / ln 2) in nats
    for sentence, prediction in zip(sentences, tagger.predict(sentences)):
        assert prediction["labels"] == generated[sentence][0]
        assert prediction["energy"] == pytest.approx(-generated[sentence][1] * math.log(2),
                                                     abs=1e-3)


def test_other_solvers_are_options(quickstart, generated):
    sentence = sorted(generated)[0]
    gd = BLSTMCRFModel.from_pretrained(str(quickstart.root / "crf"), "checkpoint_last.pt",
                                       str(quickstart.bin), inference="gd", gd_steps=2)
    assert gd.task.cfg.inference == "gd" and gd.task.cfg.gd_steps == 2
    assert len(gd.tag(sentence)) == len(sentence.split())


def test_infnet_hub_is_measured_against_its_energy(quickstart, quickstart_infnet, tagger,
                                                   generated):
    with pytest.raises(ValueError, match="energy_path"):
        TaggerCNN.from_pretrained(str(quickstart_infnet.parent), "checkpoint_last.pt",
                                  str(quickstart.bin))
    infnet = TaggerCNN.from_pretrained(str(quickstart_infnet.parent), "checkpoint_last.pt",
                                       str(quickstart.bin), energy_path=str(quickstart.energy))
    sentences = sorted(generated)[:5]
    for sentence, prediction in zip(sentences, infnet.predict(sentences)):
        assert len(prediction["labels"]) == len(sentence.split())
        # the same energy: never below the exact minimum
        assert prediction["energy"] >= -generated[sentence][1] * math.log(2) - 1e-3


def test_bad_sentences_are_refused(tagger):
    with pytest.raises(ValueError, match="empty"):
        tagger.tag("")
    with pytest.raises(ValueError, match="max-source-positions"):
        tagger.tag("dog " * 2000)


def brute_force_marginals(crf, emissions, mask):
    """(B, T, L) label marginals by enumerating every labelling of each sentence."""
    batch, length, labels = emissions.shape
    out = torch.zeros_like(emissions)
    for b in range(batch):
        n = int(mask[b].sum())
        paths = torch.tensor(list(itertools.product(range(labels), repeat=n)))
        energies = crf.energy(emissions[b : b + 1, :n].expand(len(paths), -1, -1), paths,
                              torch.ones_like(paths, dtype=torch.bool))
        weights = torch.softmax(-energies, 0)
        for t in range(n):
            out[b, t].index_add_(0, paths[:, t], weights)
    return out


def test_predict_gives_marginals_and_confidence_when_the_crf_has_them(tagger, monkeypatch):
    if not hasattr(LinearChainCRF, "marginals"):
        monkeypatch.setattr(LinearChainCRF, "marginals", brute_force_marginals, raising=False)
    prediction = tagger.predict("she reads")
    reference = brute_force_marginals(tagger.models[0].crf, *_emissions(tagger, "she reads"))
    assert torch.allclose(prediction["marginals"], reference[0], atol=1e-4)
    chosen = [tagger.task.labels.dict.index(label) - tagger.task.labels.offset
              for label in prediction["labels"]]
    assert torch.allclose(prediction["confidence"], reference[0, [0, 1], chosen], atol=1e-4)


def test_predict_without_crf_marginals(tagger, monkeypatch):
    monkeypatch.delattr(LinearChainCRF, "marginals", raising=False)
    prediction = tagger.predict("she reads")
    assert prediction["marginals"] is None and prediction["confidence"] is None


def _emissions(tagger, sentence):
    words = tagger.encode(sentence).unsqueeze(0)
    with torch.no_grad():
        emissions = tagger.models[0](words, torch.tensor([words.shape[1]]))
    return emissions, torch.ones_like(words, dtype=torch.bool)
