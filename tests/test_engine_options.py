"""ENGINE options of the authors' configuration: loss normalisation, and the count of
special symbols a NAT decoder writes (which the stock generator strips)."""

import torch
import torch.nn.functional as F
from fairseq.models.nat import CMLMNATransformerModel

from engine_plugin.report import InferenceReport
from engine_plugin.translation_generator import _CountingSymbols
from tests.test_engine_translation import build, whole_split

def _step(tiny_teachers, *extra, training=True):
    """(loss, sample_size, log, gradient, criterion) of one criterion call on 8 fully masked
    sentences, in training (or validation) mode, backward as fairseq's trainer does it."""
    task, model, criterion = build(tiny_teachers, "cmlm_infnet", *extra)
    sample = whole_split(task, size=8)
    torch.manual_seed(3)
    sample["prev_target"] = task.inject_noise(sample["target"])
    model.train(training)
    loss, sample_size, log = criterion(model, sample)
    (loss / sample_size).backward()  # what fairseq's trainer does with the two
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return loss, sample_size, log, grads, criterion

def test_per_token_and_per_sentence_normalisation_differ_by_the_token_count(tiny_teachers):
    _, sentences, log, per_sentence, _ = _step(tiny_teachers, "--normalize-by", "sentences")
    _, tokens, log_tokens, per_token, _ = _step(tiny_teachers, "--normalize-by", "tokens")
    assert sentences == 8 and tokens == log["ntokens"] > sentences
    torch.testing.assert_close(per_token * tokens, per_sentence * sentences, rtol=1e-4,
                               atol=1e-6)
    cosine = torch.nn.functional.cosine_similarity(per_token, per_sentence, dim=0)
    assert cosine > 0.9999
    # what is logged stays per sentence either way
    assert log_tokens["nsentences"] == log["nsentences"] == 8

START = torch.tensor([[0, 3, 3, 3, 3, 2, 1],  # [bos unk .. unk eos pad ..] rows
                      [0, 3, 3, 2, 1, 1, 1]])
FILL = torch.tensor([[9, 7, 1, 2, 8, 9, 9],  # slots: 7, pad, early eos, 8
                     [9, 3, 0, 9, 9, 9, 9]])  # slots: unk, bos


class _HandMadeNAT:
    """Fills the ``<unk>`` slots of ``[bos y eos]`` rows with fixed tokens."""

    pad, unk, bos, eos = 1, 3, 0, 2

    def __init__(self, fill):
        self.fill = fill

    def forward_decoder(self, decoder_out, encoder_out):
        tokens = decoder_out.output_tokens.clone()
        slots = tokens.eq(self.unk)
        tokens[slots] = self.fill[slots]
        return decoder_out._replace(output_tokens=tokens)

def test_special_symbol_counter_on_a_hand_made_output():
    from fairseq.models.nat import DecoderOut

    start, fill = START, FILL
    report = InferenceReport()
    model = _CountingSymbols(_HandMadeNAT(fill), report)
    out = model.forward_decoder(DecoderOut(start, None, None, 0, 0, None), None)
    assert out.output_tokens[0].tolist() == [0, 7, 1, 2, 8, 2, 1]
    assert report.slots == 6
    assert report.symbols == {"pad": 1, "unk": 1, "bos": 1, "early_eos": 1}
    assert report.symbol_summary() == ("special_pad=16.67% special_unk=16.67% "
                                       "special_bos=16.67% special_early_eos=16.67% slots=6")
    assert model.pad == 1  # everything else is the wrapped model's
    assert InferenceReport().symbol_summary() == ""


class _StockCMLMStep(_HandMadeNAT):
    """The stock CMLM decoder step (fill, then mask the least confident tokens again) over a
    decoder whose argmax is ``fill``, more confident at later positions."""

    forward_decoder = CMLMNATransformerModel.forward_decoder

    def decoder(self, normalize, prev_output_tokens, encoder_out):
        positions = torch.arange(1, self.fill.size(1) + 1, dtype=torch.float)[:, None]
        return (F.one_hot(self.fill, 10).float() * positions).log_softmax(-1)


def test_special_symbols_are_counted_as_filled_not_as_masked_again():
    from fairseq.models.nat import DecoderOut

    start, fill = START, FILL
    counts = []
    for max_step in (1, 10):
        report = InferenceReport()
        step = DecoderOut(start.clone(), torch.zeros(start.shape), None, 0, max_step, None)
        out = _CountingSymbols(_StockCMLMStep(fill), report).forward_decoder(step, None)
        counts.append((report.symbols, report.slots))
    # the first of 10 steps masks its fill again with <unk> for the next step ...
    assert out.output_tokens.eq(3).sum() > 1 and out.history is None
    # ... and what is counted is the fill, as when the step is the last
    assert counts[0] == counts[1] == ({"pad": 1, "unk": 1, "bos": 1, "early_eos": 1}, 6)


def test_training_steps_compute_only_the_energy_the_loss_needs(tiny_teachers):
    loss, _, log, grads, _ = _step(tiny_teachers)
    full_loss, _, full_log, full_grads, _ = _step(tiny_teachers, "--log-train-energy")
    assert "energy_discrete" not in log and "energy_discrete" in full_log
    assert torch.equal(loss, full_loss) and torch.equal(grads, full_grads)
    assert log["energy"] == full_log["energy"]
    _, _, valid_log, _, _ = _step(tiny_teachers, training=False)
    assert {"energy", "energy_discrete"} <= set(valid_log)


def test_cross_entropy_control_trains_without_the_teacher(tiny_teachers, monkeypatch):
    control = ("--energy-weight", "0", "--label-smoothing", "0.1")
    _, _, logged, logged_grads, criterion = _step(tiny_teachers, *control, "--log-train-energy")
    assert {"energy", "energy_discrete"} <= set(logged)

    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran at a training step of the control")

    monkeypatch.setattr(type(criterion.energy), "condition", no_teacher)
    loss, _, log, grads, _ = _step(tiny_teachers, *control)
    assert "energy" not in log and "energy_discrete" not in log
    assert torch.equal(grads, logged_grads) and loss == logged["loss"]
