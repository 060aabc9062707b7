"""ENGINE for translation: NAT inference networks trained against a frozen AR teacher.

The tiny teachers come from the session fixture ``tiny_teachers`` (``tests/conftest.py``).
In-process tests build the task, models and criterion from CLI-style arguments, as
fairseq-train does; the end-to-end tests run the stock ``fairseq-train``/``fairseq-generate``
with ``--user-dir engine_plugin``.
"""

import copy
import os
import re

import numpy as np
import pytest
import torch
from fairseq import checkpoint_utils, options, tasks, utils
from fairseq.data import data_utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from fairseq.models.nat import CMLMNATransformerModel
from fairseq.tasks.translation import TranslationConfig, TranslationTask

import engine_plugin  # noqa: F401  (registers the task and models)
from engine_plugin.relaxations import OPERATORS, relax
from engine_plugin.report import parse_score_line
from engine_plugin.tasks.translation_energy import TranslationEnergyConfig, TranslationEnergyTask
from engine_plugin.translation_generator import LengthSelectingGenerator, strip_nat_boundaries
from tests.fixtures.tiny_translation import PLUGIN, run_all

TINY = {
    "cmlm_infnet": [
        "--encoder-layers", "1", "--decoder-layers", "1",
        "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
        "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
        "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
    ],
    "bilstm_infnet": ["--embed-dim", "16", "--hidden-size", "16"],
}
TINY["cmlm_transformer"] = TINY["cmlm_infnet"]
# the paper pairs the CMLM with the transformer energy and the BiLSTM with the seq2seq one
TEACHER_OF = {"cmlm_infnet": "transformer", "bilstm_infnet": "lstm"}
TRAIN = ["--optimizer", "adam", "--lr", "0.001", "--batch-size", "32", "--seed", "1", "--cpu",
         "--num-workers", "0", "--no-progress-bar", "--no-epoch-checkpoints"]



def build(tiny_teachers, arch="cmlm_infnet", *extra):
    """(task, model, criterion) as ``fairseq-train`` builds them, energy = the teacher."""
    teacher = tiny_teachers["checkpoints"][TEACHER_OF[arch]]
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        tiny_teachers["data"], "--user-dir", PLUGIN, "--task", "translation_energy",
        "--arch", arch, *TINY[arch], "--criterion", "energy_loss", "--energy-path", teacher,
        "--seed", "1", *extra,
    ])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(1)
    return task, task.build_model(cfg.model), task.build_criterion(cfg.criterion)


def whole_split(task, split="valid", size=None):
    """One batch of the first ``size`` sentences of ``split`` (all by default)."""
    task.load_dataset(split)
    dataset = task.dataset(split)
    return dataset.collater([dataset[i] for i in range(size or len(dataset))])


def to_right_padding(tokens, pad):
    return utils.convert_padding_direction(tokens, pad, left_to_right=True)


def by_id(batch, tensor):
    """The rows of ``tensor`` (collated in ``batch``) in sentence-id order."""
    return tensor[batch["id"].argsort()]


@pytest.fixture(scope="module")
def nat_and_stock(tiny_teachers):
    """The valid set collated by translation_energy (NAT layout) and by stock translation."""
    # what fairseq's option parsing would fill in
    fields = dict(data=tiny_teachers["data"], source_lang="src", target_lang="tgt",
                  train_subset="train", dataset_impl="mmap", required_seq_len_multiple=1)
    nat = TranslationEnergyTask.setup_task(TranslationEnergyConfig(**fields))
    stock = TranslationTask.setup_task(TranslationConfig(**fields))
    return nat, whole_split(nat), whole_split(stock)


# ------------------------------------------------------------------------------ layouts
def test_nat_layout_maps_to_the_teachers_layout(tiny_teachers, nat_and_stock):
    """NAT ``[bos y eos]`` -> teacher ``prev [eos y]``, ``target [y eos]``; NAT source
    ``[bos x eos]`` -> teacher source ``[x eos]``: pinned on a toy row and on real batches."""
    task, nat, stock = nat_and_stock
    energy = task.load_energy(tiny_teachers["checkpoints"]["transformer"])
    d = task.tgt_dict
    bos, eos, pad, a, b = d.bos(), d.eos(), d.pad(), d.index("a"), d.index("b")
    y, mask = strip_nat_boundaries(torch.tensor([[bos, a, b, eos], [bos, b, eos, pad]]), pad)
    assert y.tolist() == [[a, b], [b, eos]] and mask.tolist() == [[True, True], [True, False]]
    prev, target = energy.frame_tokens(y, mask)
    assert prev.tolist() == [[eos, a, b], [eos, b, pad]]
    assert target.tolist() == [[a, b, eos], [b, eos, pad]]

    y, mask = strip_nat_boundaries(by_id(nat, nat["target"]), pad)
    prev, target = energy.frame_tokens(y, mask)
    assert torch.equal(prev, by_id(stock, stock["net_input"]["prev_output_tokens"]))
    assert torch.equal(target, by_id(stock, stock["target"]))

    src = by_id(nat, nat["net_input"]["src_tokens"])
    lengths = by_id(nat, nat["net_input"]["src_lengths"])
    stock_src = by_id(stock, stock["net_input"]["src_tokens"])
    stock_lengths = by_id(stock, stock["net_input"]["src_lengths"])
    assert src[:, :-1].eq(pad).any() and (src == bos).sum() == len(src)  # left-padded, BOS
    stripped, stripped_lengths = energy.strip_source_bos(src, lengths)
    assert torch.equal(stripped, stock_src) and torch.equal(stripped_lengths, stock_lengths)
    right = energy.strip_source_bos(to_right_padding(src, pad), lengths)[0]
    assert torch.equal(right, to_right_padding(stock_src, pad))
    assert energy.strip_source_bos(stock_src, stock_lengths)[0] is stock_src  # no BOS: as is


@pytest.mark.parametrize("teacher", ["transformer", "lstm"])
def test_one_hot_relaxed_energy_is_teacher_nll(tiny_teachers, nat_and_stock, teacher):
    task, nat, stock = nat_and_stock
    energy = task.load_energy(tiny_teachers["checkpoints"][teacher])
    context = energy.condition(nat["net_input"])
    gold, mask = strip_nat_boundaries(nat["target"], task.tgt_dict.pad())
    logits = torch.randn(gold.shape + (len(task.tgt_dict),),
                         generator=torch.Generator().manual_seed(0))

    # the gold translation, scored from NAT-layout data = stock translation's token NLL
    reference = energy.nll(energy.encode(stock["net_input"]["src_tokens"],
                                         stock["net_input"]["src_lengths"]),
                           stock["target"], stock["net_input"]["prev_output_tokens"])
    ours = energy.discrete_energy(context, gold, mask)
    torch.testing.assert_close(by_id(nat, ours), by_id(stock, reference), rtol=1e-6, atol=1e-5)

    # straight-through operators have one-hot forward values: bit for bit the argmax's NLL,
    # special symbols included (the argmax has some <pad>: not the end of the sentence)
    argmax = logits.argmax(-1)
    assert argmax[mask].eq(task.tgt_dict.pad()).any()
    discrete = energy.discrete_energy(context, argmax, mask)
    for o1, o2 in [("st", "st"), ("stl", "stl"), ("st", "stl"), ("stl", "st")]:
        assert torch.equal(energy.relaxed_energy(context, logits, mask, o1, o2), discrete)

    # sg: O1 and O2 draw independent noise (O1 first), so inputs and outputs differ; with
    # ordinary symbols only, the stock token path gives the same energy
    logits[..., :task.tgt_dict.nspecial] = -1e4
    g = torch.Generator().manual_seed(3)
    inputs, outputs = relax(logits, "sg", g).argmax(-1), relax(logits, "sg", g).argmax(-1)
    assert not torch.equal(inputs[mask], outputs[mask])
    expected = energy.nll(context, energy.frame_tokens(outputs, mask)[1],
                          energy.frame_tokens(inputs, mask)[0])
    relaxed = energy.relaxed_energy(context, logits, mask, "sg", "sg",
                                    torch.Generator().manual_seed(3))
    assert torch.equal(relaxed, expected)


def test_teacher_with_other_dictionaries_is_refused(tiny_teachers, nat_and_stock):
    task = copy.copy(nat_and_stock[0])
    task.tgt_dict = copy.deepcopy(task.tgt_dict)
    index = task.tgt_dict.index("c")
    task.tgt_dict.symbols[index] = "zz"
    path = tiny_teachers["checkpoints"]["transformer"]
    with pytest.raises(ValueError, match=re.escape(
            f"--energy-path {path}: target dictionary has 24 symbols, the teacher's has 24; "
            f"first difference at index {index}: 'zz' (teacher: 'c')")):
        task.load_energy(path)


# --------------------------------------------------------------------------- training
class _Backward:
    """The part of a fairseq optimizer that ``task.train_step`` uses."""

    @staticmethod
    def backward(loss):
        loss.backward()


def test_training_step_moves_the_infnet_never_the_teacher(tiny_teachers):
    task, model, criterion = build(tiny_teachers, "cmlm_infnet", "--o1", "sx", "--o2", "st")
    teacher = criterion.energy.model
    before = {k: p.detach().clone() for k, p in teacher.state_dict().items()}
    infnet_before = {k: p.detach().clone() for k, p in model.state_dict().items()}
    sample = whole_split(task, "train", 16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss, sample_size, log = task.train_step(sample, model, criterion, _Backward(), 1)
    optimizer.step()
    assert sample_size == 16 and {"energy", "ce", "length"} <= set(log)
    assert torch.equal(sample["prev_target"].ne(task.tgt_dict.unk()),  # --noise full_mask
                       sample["target"].eq(task.tgt_dict.bos()) | sample["target"].eq(
                           task.tgt_dict.eos()) | sample["target"].eq(task.tgt_dict.pad()))
    assert not teacher.training
    for name, param in teacher.named_parameters():
        assert param.grad is None and not param.requires_grad, name
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert any(not torch.equal(v, infnet_before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("arch", ["cmlm_infnet", "bilstm_infnet"])
def test_all_operator_pairs_train(tiny_teachers, arch):
    task, model, criterion = build(tiny_teachers, arch)
    sample = whole_split(task)
    sample["prev_target"] = task.inject_noise(sample["target"])
    for o1 in OPERATORS:
        for o2 in OPERATORS:
            criterion.cfg.o1, criterion.cfg.o2 = o1, o2
            model.zero_grad()
            loss, _, log = criterion(model, sample)
            loss.backward()
            assert torch.isfinite(loss) and log["energy"] > 0, (o1, o2)
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert grads and all(torch.isfinite(g).all() for g in grads), (o1, o2)
            assert sum(g.abs().sum() for g in grads) > 0, (o1, o2)


def test_cmlm_infnet_is_a_cmlm_transformer(tiny_teachers):
    """Same parameters as stock cmlm_transformer: --finetune-from-model CMLM.pt works."""
    _, infnet, _ = build(tiny_teachers, "cmlm_infnet")
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        tiny_teachers["data"], "--task", "translation_lev", "--arch", "cmlm_transformer",
        *TINY["cmlm_transformer"], "--criterion", "nat_loss"])
    cfg = convert_namespace_to_omegaconf(args)
    cmlm = tasks.setup_task(cfg.task).build_model(cfg.model)
    assert isinstance(infnet, CMLMNATransformerModel)
    assert {k: v.shape for k, v in infnet.state_dict().items()} == {
        k: v.shape for k, v in cmlm.state_dict().items()}
    infnet.load_state_dict(cmlm.state_dict(), strict=True)


def test_nat_from_teacher_copies_the_shared_weights(tiny_teachers, tmp_path, capsys):
    """scripts/nat_from_teacher.py: a CMLM holding the teacher's encoder, decoder layers and
    embeddings (its own length predictor fresh), which --finetune-from-model accepts; a NAT
    model of other sizes is refused."""
    from scripts.nat_from_teacher import main as nat_from_teacher

    teacher_path = tiny_teachers["checkpoints"]["transformer"]
    out = str(tmp_path / "init.pt")
    nat_args = [tiny_teachers["data"], "--task", "translation_lev", "--arch",
                "cmlm_transformer", *TINY["cmlm_transformer"]]
    assert nat_from_teacher([teacher_path, out, "--", *nat_args]) == 0
    assert "initialised afresh: decoder.embed_length.weight" in capsys.readouterr().out
    teacher = checkpoint_utils.load_checkpoint_to_cpu(teacher_path)["model"]
    state = checkpoint_utils.load_checkpoint_to_cpu(out)
    assert state["cfg"].model._name == "cmlm_transformer"
    shared = [k for k in state["model"] if k in teacher]
    assert any(k.startswith("encoder.layers.") for k in shared)
    assert any(k.startswith("decoder.layers.0.encoder_attn.") for k in shared)
    for name in shared:
        assert torch.equal(state["model"][name], teacher[name]), name

    run_all("train", [[tiny_teachers["data"], "--user-dir", PLUGIN, "--task", "translation_lev",
                       "--arch", "cmlm_transformer", *TINY["cmlm_transformer"],
                       "--criterion", "nat_loss", "--noise", "random_mask", *TRAIN,
                       "--max-update", "2", "--finetune-from-model", out,
                       "--save-dir", str(tmp_path / "cmlm")]], str(tmp_path / "logs"))
    assert os.path.isfile(tmp_path / "cmlm" / "checkpoint_last.pt")

    wider = [*nat_args[:5], *TINY["cmlm_transformer"][:4], "--encoder-embed-dim", "48",
             "--decoder-embed-dim", "48", *TINY["cmlm_transformer"][8:]]
    assert nat_from_teacher([teacher_path, out, "--", *wider]) == 2
    assert "sizes differ" in capsys.readouterr().err


# ------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def infnets(tiny_teachers, tmp_path_factory):
    """A stock CMLM baseline (nat_loss), ENGINE infnets: cmlm_infnet fine-tuned from it
    against the transformer teacher, bilstm_infnet against the LSTM teacher."""
    root = tmp_path_factory.mktemp("engine")
    data, teachers, logs = tiny_teachers["data"], tiny_teachers["checkpoints"], str(root / "logs")
    save = {name: str(root / name) for name in ("cmlm_transformer", *TEACHER_OF)}

    def engine(arch, *extra):
        return [data, "--user-dir", PLUGIN, "--task", "translation_energy", "--arch", arch,
                *TINY[arch], "--criterion", "energy_loss", "--energy-path",
                teachers[TEACHER_OF[arch]], "--o1", "sx", "--o2", "st", "--noise", "full_mask",
                *TRAIN, "--max-update", "10", "--save-dir", save[arch], *extra]

    run_all("train", [
        [data, "--user-dir", PLUGIN, "--task", "translation_lev", "--arch", "cmlm_transformer",
         *TINY["cmlm_transformer"], "--criterion", "nat_loss", "--noise", "random_mask",
         *TRAIN, "--max-update", "20", "--save-dir", save["cmlm_transformer"]],
        engine("bilstm_infnet", "--lr", "0.01"),
    ], logs)
    run_all("train", [engine("cmlm_infnet", "--finetune-from-model",
                             os.path.join(save["cmlm_transformer"], "checkpoint_last.pt"))], logs)
    return {"raw": tiny_teachers["raw"], "data": data, "logs": logs, "teachers": teachers,
            "checkpoints": {arch: os.path.join(save[arch], "checkpoint_last.pt")
                            for arch in TEACHER_OF}}


def test_checkpoint_holds_the_infnet_only(tiny_teachers, infnets):
    _, infnet, _ = build(tiny_teachers, "cmlm_infnet")
    state = torch.load(infnets["checkpoints"]["cmlm_infnet"], weights_only=False)
    assert set(state["model"]) == set(infnet.state_dict())
    n_params = len(list(infnet.parameters()))
    assert len(state["last_optimizer_state"]["state"]) == n_params  # Adam: infnet only
    assert not state.get("criterion")  # the energy is not a submodule of the criterion


def _hypotheses(text):
    """{sentence id: (score, NAT length n + 2)} from fairseq-generate's ``H-``/``P-`` lines
    (``P-`` has a score for every position of ``[bos y eos]``; the printed ``H-`` string
    drops special symbols, which an untrained infnet may output)."""
    scores, lengths = {}, {}
    for line in text.splitlines():
        if line.startswith("H-"):
            key, score = line.split("\t")[:2]
            scores[int(key[2:])] = float(score)
        elif line.startswith("P-"):
            key, positional = line.split("\t")
            lengths[int(key[2:])] = len(positional.split())
    assert sorted(scores) == sorted(lengths)
    return {i: (scores[i], lengths[i]) for i in scores}


def test_generate_decodes_every_test_sentence(infnets):
    data, teachers = infnets["data"], infnets["teachers"]

    def generate(arch, *extra):
        return [data, "--user-dir", PLUGIN, "--task", "translation_energy", "--path",
                infnets["checkpoints"][arch], "--gen-subset", "test", "--batch-size", "8",
                "--cpu", "--num-workers", "0", *extra]

    runs = {}  # 5 runs in parallel: each spends most of its time starting up
    for arch in infnets["checkpoints"]:
        beam = ["--iter-decode-max-iter", "0", "--iter-decode-with-beam", "3"]
        runs[arch, "beam3"] = generate(arch, *beam)
        runs[arch, "beam3_energy"] = generate(arch, *beam, "--length-select", "energy",
                                              "--energy-path", teachers[TEACHER_OF[arch]])
    # reference lengths, with mask-predict refinement as for stock CMLMs
    runs["cmlm_infnet", "oracle"] = generate("cmlm_infnet", "--oracle-length",
                                             "--iter-decode-max-iter", "3")
    outputs = dict(zip(runs, run_all("generate", list(runs.values()), infnets["logs"])))

    with open(os.path.join(infnets["raw"], "test.tgt")) as f:
        references = {i: line.split() for i, line in enumerate(f)}
    for key, text in outputs.items():
        hypos = _hypotheses(text)
        assert sorted(hypos) == list(range(24)), key
        # the score line ends with the special symbols among the positions the NAT filled
        shares = parse_score_line(text.strip().splitlines()[-1]).fields
        assert set(shares) == {"special_pad", "special_unk", "special_bos",
                               "special_early_eos", "slots"}, key
        assert int(shares["slots"]) >= sum(n - 2 for _, n in hypos.values()), key
        assert all(np.isfinite(score) for score, _ in hypos.values()), key
        if key[1] == "oracle":
            assert all(hypos[i][1] == len(references[i]) + 2 for i in hypos), key
    for arch in infnets["checkpoints"]:  # with energy selection H- is the teacher's score
        avg = _hypotheses(outputs[arch, "beam3"])
        selected = _hypotheses(outputs[arch, "beam3_energy"])
        assert all(avg[i][0] != selected[i][0] for i in avg)


def test_energy_length_selection_picks_the_lowest_energy_per_token(infnets):
    """In-process: every candidate's score is -E/(n+1) under the teacher, and the
    generator returns the best-scored candidate of each sentence's length beam."""
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [infnets["checkpoints"]["cmlm_infnet"]], arg_overrides={
            "data": infnets["data"], "energy_path": infnets["teachers"]["transformer"],
            "length_select": "energy"})
    cfg.generation.iter_decode_max_iter, cfg.generation.iter_decode_with_beam = 0, 3
    generator = task.build_generator(models, cfg.generation)
    assert isinstance(generator, LengthSelectingGenerator)
    assert generator.beam_size == 3 and generator.max_iter == 0
    sample = whole_split(task, "test")
    seen = []
    rerank = generator.rerank
    generator.rerank = lambda *args: seen.append(rerank(*args)) or seen[-1]
    chosen = generator.generate(models, sample)

    candidates = seen[0]
    assert len(candidates) == 3 * len(chosen)
    energy = generator.energy
    tokens = data_utils.collate_tokens([c[0]["tokens"] for c in candidates], task.tgt_dict.pad())
    y, mask = strip_nat_boundaries(tokens, task.tgt_dict.pad())
    src = sample["net_input"]["src_tokens"].repeat_interleave(3, 0)
    lengths = sample["net_input"]["src_lengths"].repeat_interleave(3, 0)
    prev, target = energy.frame_tokens(y, mask)
    expected = energy.nll(energy.encode(*energy.strip_source_bos(src, lengths)), target, prev)
    for c, e, n in zip(candidates, expected.tolist(), mask.sum(1).tolist()):
        assert c[0]["energy"] == pytest.approx(e, rel=1e-5)
        assert c[0]["score"] == pytest.approx(-e / (n + 1), rel=1e-5)
    for i, hypos in enumerate(chosen):
        scores = [candidates[3 * i + j][0]["score"] for j in range(3)]
        assert hypos[0]["score"] == max(scores)


@pytest.mark.parametrize("options_, message", [
    ({"length_select": "energy"}, "needs --energy-path"),
    ({"length_select": "energy", "energy_path": "TEACHER"}, "--iter-decode-with-beam K with K > 1"),
    ({"oracle_length": True, "beam": 3}, "--oracle-length decodes the reference length only"),
])
def test_length_options_are_checked(infnets, options_, message):
    options_ = dict(options_)
    beam = options_.pop("beam", 1)
    if options_.get("energy_path") == "TEACHER":
        options_["energy_path"] = infnets["teachers"]["transformer"]
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [infnets["checkpoints"]["cmlm_infnet"]], arg_overrides={"data": infnets["data"],
                                                                "energy_path": None, **options_})
    cfg.generation.iter_decode_with_beam = beam
    with pytest.raises(ValueError, match=re.escape(message)):
        task.build_generator(models, cfg.generation)


# ------------------------------------------------------------------------- dev BLEU
def test_eval_bleu_scores_the_generators_output_without_boundaries(tiny_teachers, infnets):
    """``--eval-bleu`` (a no-op in stock translation_lev) scores one-iteration outputs
    against the references: BOS/EOS/padding never count as words on either side."""
    bleu_args = ["--eval-bleu", "--eval-bleu-args", '{"iter_decode_max_iter": 0}']
    task, model, criterion = build(tiny_teachers, "cmlm_infnet", *bleu_args)
    state = torch.load(infnets["checkpoints"]["cmlm_infnet"], weights_only=False)
    model.load_state_dict(state["model"])
    sample = whole_split(task)
    _, _, logged = task.valid_step(sample, model, criterion)

    hypos = task.inference_step(task.sequence_generator, [model], sample)
    assert task.sequence_generator.max_iter == 0
    specials = {task.tgt_dict.bos(), task.tgt_dict.eos(), task.tgt_dict.pad()}
    hyp_words = sum(sum(t not in specials for t in h[0]["tokens"].tolist()) for h in hypos)
    with open(os.path.join(tiny_teachers["raw"], "valid.tgt")) as f:
        ref_words = sum(len(line.split()) for line in f)
    assert logged["_bleu_sys_len"] == hyp_words
    assert logged["_bleu_ref_len"] == ref_words
    assert logged["_bleu_totals_0"] == hyp_words
    assert 0 < logged["_bleu_counts_0"] <= hyp_words


def test_best_checkpoint_by_dev_bleu(tiny_teachers, infnets, tmp_path):
    """``fairseq-train --eval-bleu --best-checkpoint-metric bleu`` (the paper's early stopping
    of the baselines) runs for a stock CMLM under translation_energy and logs dev BLEU."""
    save = tmp_path / "cmlm"
    run_all("train", [[
        tiny_teachers["data"], "--user-dir", PLUGIN, "--task", "translation_energy",
        "--arch", "cmlm_transformer", *TINY["cmlm_transformer"], "--criterion", "nat_loss",
        "--noise", "random_mask", *TRAIN, "--max-update", "4", "--save-dir", save,
        "--eval-bleu", "--eval-bleu-args", '{"iter_decode_max_iter": 0}',
        "--best-checkpoint-metric", "bleu", "--maximize-best-checkpoint-metric",
        "--log-format", "simple"]], str(tmp_path / "logs"))
    with open(tmp_path / "logs" / "train0.out") as f:
        valid = [line for line in f if "| valid on 'valid' subset" in line]
    assert valid and all(re.search(r"\| bleu [\d.]+ ", line) for line in valid)
    assert (save / "checkpoint_best.pt").exists()


def test_hub_translates_in_one_pass_over_a_length_beam(infnets, tmp_path):
    """CMLMInfnet.from_pretrained -> stock GeneratorHubInterface.translate, also through
    subword-nmt BPE (the corpus words are single symbols, which no merge changes) and with
    the length chosen by the teacher's energy."""
    from fairseq.hub_utils import GeneratorHubInterface

    from engine_plugin.models.nat_infnets import CMLMInfnet

    checkpoint = infnets["checkpoints"]["cmlm_infnet"]
    codes = tmp_path / "codes"
    codes.write_text("#version: 0.2\nq r\n")  # single-symbol words: no merge applies
    sentence = open(os.path.join(infnets["raw"], "test.src")).readline().strip()
    hubs = {
        "plain": CMLMInfnet.from_pretrained(os.path.dirname(checkpoint), "checkpoint_last.pt",
                                            infnets["data"]),
        "bpe": CMLMInfnet.from_pretrained(os.path.dirname(checkpoint), "checkpoint_last.pt",
                                          infnets["data"], bpe="subword_nmt",
                                          bpe_codes=str(codes)),
        "energy": CMLMInfnet.from_pretrained(
            os.path.dirname(checkpoint), "checkpoint_last.pt", infnets["data"],
            length_select="energy", energy_path=infnets["teachers"]["transformer"]),
    }
    symbols = set(open(os.path.join(infnets["data"], "dict.tgt.txt")).read().split()[::2])
    for name, hub in hubs.items():
        assert type(hub) is GeneratorHubInterface
        generation = hub.cfg.generation
        assert (generation.iter_decode_max_iter, generation.iter_decode_with_beam) == (0, 3)
        translation = hub.translate(sentence)
        assert isinstance(translation, str) and translation.split(), name
        assert set(translation.split()) <= symbols, (name, translation)
    assert hubs["bpe"].translate(sentence) == hubs["plain"].translate(sentence)
    # energy-based length selection reaches the generator
    generator = hubs["energy"].task.build_generator(hubs["energy"].models,
                                                    hubs["energy"].cfg.generation)
    assert isinstance(generator, LengthSelectingGenerator)
