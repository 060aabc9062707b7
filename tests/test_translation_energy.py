"""TranslationEnergy against stock fairseq: tiny transformer and LSTM teachers trained here.

The session fixture ``tiny_teachers`` (``tests/conftest.py``) writes a tiny corpus,
binarises it with ``fairseq-preprocess`` and trains both teachers with ``fairseq-train``;
the module fixture scores the valid set with ``fairseq-generate --score-reference``, all as
subprocesses of the stock CLI (``--user-dir engine_plugin`` lets them read the checkpoints
under torch >= 2.6).
"""

import copy
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine_plugin.checkpoints import load_frozen_model
from engine_plugin.energies import TranslationEnergy
from tests.fixtures.tiny_translation import PLUGIN, TEACHER_ARCHS, run_all


def _parse_score_reference(text):
    """``H-<id>\\t<score>\\t...`` and ``P-<id>\\t<scores>`` lines -> {id: (score, [scores])}."""
    sentence, positional = {}, {}
    for line in text.splitlines():
        if line.startswith("H-"):
            key, score, _ = line.split("\t", 2)
            sentence[int(key[2:])] = float(score)
        elif line.startswith("P-"):
            key, scores = line.split("\t", 1)
            positional[int(key[2:])] = [float(s) for s in scores.split()]
    return {i: (sentence[i], positional[i]) for i in sentence}


@pytest.fixture(scope="module")
def teachers(tiny_teachers):
    data, checkpoints = tiny_teachers["data"], tiny_teachers["checkpoints"]
    scored = run_all("generate", [
        [
            data, "--user-dir", PLUGIN, "--path", checkpoints[arch], "--score-reference",
            "--gen-subset", "valid", "--batch-size", "8", "--cpu", "--num-workers", "0",
        ]
        for arch in TEACHER_ARCHS
    ], tiny_teachers["logs"])
    result = {}
    for arch, text in zip(TEACHER_ARCHS, scored):
        model, _, task = load_frozen_model(checkpoints[arch])
        task.load_dataset("valid")
        dataset = task.dataset("valid")
        energy = TranslationEnergy(model, task.source_dictionary, task.target_dictionary)
        result[arch] = {
            "energy": energy,
            # the whole valid set in one ragged batch (lengths 4-11 with EOS)
            "batch": dataset.collater([dataset[i] for i in range(len(dataset))]),
            "score_reference": _parse_score_reference(text),
        }
    return result


@pytest.fixture(params=list(TEACHER_ARCHS))
def teacher(request, teachers):
    return teachers[request.param]


def _one_hot_inputs(energy, batch):
    target = batch["target"]
    prev = batch["net_input"]["prev_output_tokens"]
    mask = target.ne(energy.pad)
    return _one_hot(prev, energy), _one_hot(target, energy), mask


def _one_hot(tokens, energy):
    return F.one_hot(tokens, energy.vocab_size).float()


def _encode(energy, batch):
    return energy.encode(batch["net_input"]["src_tokens"], batch["net_input"]["src_lengths"])


def test_one_hot_energy_is_token_nll_bit_for_bit(teacher):
    energy, batch = teacher["energy"], teacher["batch"]
    lengths = batch["target"].ne(energy.pad).sum(1)
    assert lengths.min() < lengths.max()  # ragged
    encoder_out = _encode(energy, batch)
    nll = energy.nll(encoder_out, batch["target"], batch["net_input"]["prev_output_tokens"])
    assert torch.equal(energy.energy(encoder_out, *_one_hot_inputs(energy, batch)), nll)

    # the same through add_boundaries: tokens y_1..y_n without start symbol and EOS
    tokens = batch["target"].masked_fill(batch["target"].eq(energy.eos), energy.pad)[:, :-1]
    y = _one_hot(tokens, energy)
    framed = energy.add_boundaries(y, y, tokens.ne(energy.pad))
    assert torch.equal(framed[2], batch["target"].ne(energy.pad))
    assert torch.equal(energy.energy(encoder_out, *framed), nll)


def test_encode_accepts_unsorted_batches(teacher):
    energy, batch = teacher["energy"], teacher["batch"]
    inputs, outputs, mask = _one_hot_inputs(energy, batch)
    expected = energy.energy(_encode(energy, batch), inputs, outputs, mask)
    perm = torch.randperm(len(mask), generator=torch.Generator().manual_seed(0))
    src = batch["net_input"]["src_tokens"][perm], batch["net_input"]["src_lengths"][perm]
    shuffled = energy.energy(energy.encode(*src), inputs[perm], outputs[perm], mask[perm])
    torch.testing.assert_close(shuffled, expected[perm])


def test_energy_matches_fairseq_generate_score_reference(teacher):
    energy, batch = teacher["energy"], teacher["batch"]
    inputs, outputs, mask = _one_hot_inputs(energy, batch)
    encoder_out = _encode(energy, batch)
    energies = energy.energy(encoder_out, inputs, outputs, mask)
    token_scores = energy.log_probs(encoder_out, inputs, mask).gather(
        -1, batch["target"].unsqueeze(-1)
    ).squeeze(-1)
    reference = teacher["score_reference"]
    assert sorted(reference) == sorted(batch["id"].tolist())
    for row, sample_id in enumerate(batch["id"].tolist()):
        length = int(mask[row].sum())  # target tokens + EOS
        score, positional = reference[sample_id]
        # H-: sum of log-probs over the target including EOS / length, in base 2
        assert -energies[row].item() / (length * math.log(2)) == pytest.approx(score, rel=1e-5)
        # P-: per-token log-probs in base 2, printed with 4 decimals
        assert len(positional) == length
        ours = (token_scores[row, :length] / math.log(2)).tolist()
        assert ours == pytest.approx(positional, abs=6e-5)


def test_token_energies_are_fairseq_positional_scores(teacher):
    energy, batch = teacher["energy"], teacher["batch"]
    target = batch["target"]  # [y_1 .. y_n eos pad ..]
    mask = target.ne(energy.pad) & target.ne(energy.eos)
    encoder_out = _encode(energy, batch)
    values = energy.token_energies(encoder_out, target, mask)
    torch.testing.assert_close(values.sum(1), energy.discrete_energy(encoder_out, target, mask))
    for row, sample_id in enumerate(batch["id"].tolist()):
        length = int(mask[row].sum()) + 1  # the tokens and EOS
        _, positional = teacher["score_reference"][sample_id]
        assert (-values[row, :length] / math.log(2)).tolist() == pytest.approx(positional,
                                                                                abs=6e-5)
        assert values[row, length:].eq(0).all()


class _DummyInfnet(nn.Module):
    """Holds the energy the way a real infnet would: as a plain attribute."""

    def __init__(self, energy, shape):
        super().__init__()
        self.energy = energy
        self.logits = nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(0)))


def test_gradients_reach_inputs_but_never_the_teacher(teacher):
    energy, batch = teacher["energy"], teacher["batch"]
    teacher_params = dict(energy.model.named_parameters())
    before = {k: p.detach().clone() for k, p in teacher_params.items()}
    tokens = batch["target"][:, :-1]
    mask = tokens.ne(energy.pad) & tokens.ne(energy.eos)
    infnet = _DummyInfnet(energy, tokens.shape + (energy.vocab_size,))
    assert [name for name, _ in infnet.named_parameters()] == ["logits"]
    assert list(infnet.state_dict()) == ["logits"]
    infnet.train()
    assert not energy.model.training
    assert copy.deepcopy(infnet).energy is energy

    optimizer = torch.optim.SGD(infnet.parameters(), lr=1.0)
    q = infnet.logits.softmax(-1)
    inputs, outputs, target_mask = energy.add_boundaries(q, q, mask)
    inputs.retain_grad()
    outputs.retain_grad()
    energy.energy(_encode(energy, batch), inputs, outputs, target_mask).sum().backward()
    optimizer.step()

    for grad in (inputs.grad, outputs.grad):
        assert grad[target_mask].abs().sum(-1).gt(0).all()
        assert grad[~target_mask].eq(0).all()
    assert inputs.grad[:, 0].abs().sum() > 0  # the start symbol's row is an input too
    assert infnet.logits.grad[mask].abs().sum(-1).gt(0).all()
    for name, param in teacher_params.items():
        assert not param.requires_grad, name
        assert param.grad is None, name
        assert torch.equal(param, before[name]), name


def test_dropout_is_off(teacher):
    energy, batch = teacher["energy"], teacher["batch"]
    assert any(getattr(m, "p", None) == 0.1 for m in energy.model.modules())  # FairseqDropout
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(batch["target"].shape + (energy.vocab_size,), generator=g)
    mask = batch["target"].ne(energy.pad)
    encoder_out = _encode(energy, batch)

    def run():
        return energy.energy(encoder_out, logits.softmax(-1), logits.softmax(-1), mask)

    first = run()
    assert torch.equal(run(), first)
    energy.model.train()  # the teacher does have dropout: in train mode two calls differ
    try:
        torch.manual_seed(0)
        q = logits.softmax(-1)
        noisy = energy.energy(_encode(energy, batch), q, q, mask)
    finally:
        energy.model.eval()
    assert not torch.equal(noisy, first)
    assert torch.equal(run(), first)


def test_soft_input_is_the_mixture_of_embeddings(teacher):
    """A soft input equals a token whose embedding row is the mixture (checked with <unk>,
    which the corpus never uses, in a copy of the teacher)."""
    energy, batch = teacher["energy"], teacher["batch"]
    assert not getattr(energy.model.decoder, "share_input_output_embed", False)
    inputs, outputs, mask = _one_hot_inputs(energy, batch)
    row, col = 0, 2
    a = int(batch["net_input"]["prev_output_tokens"][row, col])
    b = next(i for i in range(energy.tgt_dict.nspecial, energy.vocab_size) if i != a)
    inputs[row, col] = 0
    inputs[row, col, a] = 0.3
    inputs[row, col, b] = 0.7
    soft = energy.energy(_encode(energy, batch), inputs, outputs, mask)

    copy_model = copy.deepcopy(energy.model)
    unk = energy.tgt_dict.unk()
    weight = copy_model.decoder.embed_tokens.weight
    weight[unk] = 0.3 * weight[a] + 0.7 * weight[b]
    twin = TranslationEnergy(copy_model, energy.src_dict, energy.tgt_dict)
    prev = batch["net_input"]["prev_output_tokens"].clone()
    prev[row, col] = unk
    token = twin.nll(_encode(twin, batch), batch["target"], prev)
    torch.testing.assert_close(soft, token, rtol=1e-5, atol=1e-5)
    one_hot = energy.energy(_encode(energy, batch), *_one_hot_inputs(energy, batch))
    assert not torch.allclose(soft[row], one_hot[row])
    assert torch.equal(soft[row + 1 :], one_hot[row + 1 :])


def test_dictionary_mismatch_is_reported(teachers):
    energy = teachers["transformer"]["energy"]
    energy.check_dictionaries(copy.deepcopy(energy.src_dict), copy.deepcopy(energy.tgt_dict))

    renamed = copy.deepcopy(energy.tgt_dict)
    index = renamed.index("c")
    renamed.symbols[index] = "zz"
    expected = (
        rf"target dictionary has 24 symbols, the teacher's has 24; "
        rf"first difference at index {index}: 'zz' \(teacher: 'c'\)"
    )
    with pytest.raises(ValueError, match=expected):
        energy.check_dictionaries(energy.src_dict, renamed)

    longer = copy.deepcopy(energy.src_dict)
    longer.add_symbol("extra")
    with pytest.raises(ValueError, match="source dictionary has 25 symbols, the teacher's has 24"):
        energy.check_dictionaries(longer, energy.tgt_dict)

    # the LSTM teacher was binarised from the same data: same dictionaries
    lstm = teachers["lstm"]["energy"]
    energy.check_dictionaries(lstm.src_dict, lstm.tgt_dict)


def test_input_validation(teachers):
    energy, batch = teachers["transformer"]["energy"], teachers["transformer"]["batch"]
    inputs, outputs, mask = _one_hot_inputs(energy, batch)
    encoder_out = _encode(energy, batch)
    with pytest.raises(ValueError, match="same shape"):
        energy.energy(encoder_out, inputs, outputs[:, :-1], mask)
    with pytest.raises(ValueError, match=r"\(B, T, V=24\)"):
        energy.energy(encoder_out, inputs[..., :-1], outputs[..., :-1], mask)
    with pytest.raises(ValueError, match="prefix"):
        holes = mask.clone()
        holes[0, 1] = False
        energy.energy(encoder_out, inputs, outputs, holes)


def test_missing_checkpoint_names_path_and_fix(tmp_path):
    missing = str(tmp_path / "nowhere" / "checkpoint_best.pt")
    with pytest.raises(FileNotFoundError, match="fairseq-train") as info:
        load_frozen_model(missing)
    assert missing in str(info.value)
