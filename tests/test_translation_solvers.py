"""The solver family on translation: gradient descent, warm start and tailoring on the
teacher energy of the tiny corpus, and the ``--inference`` registry.

The tiny teachers come from the session fixture ``tiny_teachers`` (``tests/conftest.py``);
the NAT is a tiny ``cmlm_infnet`` trained for a few updates against the transformer
teacher (the recipe of ``tests/test_engine_translation.py``'s ``infnets``, shortened).
"""

import re
from types import SimpleNamespace

import pytest
import torch
from fairseq import checkpoint_utils

import engine_plugin  # noqa: F401  (registers the task, models and solvers)
from engine_plugin.report import parse_score_line
from engine_plugin.solvers.checks import DivergedError
from engine_plugin.solvers.gradient_descent import GradientDescentSolver, descend
from engine_plugin.solvers.options import SolverConfig
from engine_plugin.solvers.registry import SOLVERS, Problem, solver_for
from engine_plugin.tasks.sequence_labeling import SequenceLabelingConfig
from engine_plugin.tasks.translation_energy import TranslationEnergyConfig, TranslationEnergyTask
from engine_plugin.translation_generator import strip_nat_boundaries
from tests.cli import run
from tests.fixtures.tiny_translation import PLUGIN, run_all
from tests.test_engine_translation import TINY, TRAIN, whole_split


@pytest.fixture(scope="module")
def nat(tiny_teachers, tmp_path_factory):
    """``{"data", "teacher", "checkpoint"}``: a tiny cmlm_infnet (ENGINE, 10 updates)."""
    root = tmp_path_factory.mktemp("solvers")
    teacher = tiny_teachers["checkpoints"]["transformer"]
    run_all("train", [[
        tiny_teachers["data"], "--user-dir", PLUGIN, "--task", "translation_energy",
        "--arch", "cmlm_infnet", *TINY["cmlm_infnet"], "--criterion", "energy_loss",
        "--energy-path", teacher, "--o1", "sx", "--o2", "st", "--noise", "full_mask",
        *TRAIN, "--max-update", "10", "--save-dir", str(root / "nat")]], str(root / "logs"))
    return {"data": tiny_teachers["data"], "teacher": teacher,
            "checkpoint": str(root / "nat" / "checkpoint_last.pt")}


def load(nat, max_iter=0, beam=1, force_max_iter=False, **options):
    """(models, generator, task) as fairseq-generate builds them, task options overridden."""
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
        [nat["checkpoint"]], arg_overrides={"data": nat["data"], "energy_path": nat["teacher"],
                                            **options})
    cfg.generation.iter_decode_max_iter, cfg.generation.iter_decode_with_beam = max_iter, beam
    cfg.generation.iter_decode_force_max_iter = force_max_iter
    return models, task.build_generator(models, cfg.generation), task


def decode(nat, **options):
    """The hypotheses of the test set and the generator's report."""
    models, generator, task = load(nat, **options)
    hypos = generator.generate(models, whole_split(task, "test"))
    return hypos, generator.report


# ------------------------------------------------------------------------- registry
def test_unknown_and_exact_solvers_are_refused_naming_the_choices():
    assert list(SOLVERS) == ["viterbi", "gd", "infnet", "tailored", "warmstart"]
    with pytest.raises(ValueError, match=re.escape(
            "--inference beam: unknown; choose from viterbi, gd, infnet, tailored, warmstart")):
        solver_for("beam", "sequence_labeling", exact_available=True)
    with pytest.raises(ValueError, match=re.escape(
            "--inference beam: unknown; choose from gd, infnet, tailored, warmstart")):
        solver_for("beam", "translation_energy", exact_available=False)
    with pytest.raises(ValueError, match=re.escape(
            "--inference viterbi needs an energy with an exact minimiser (the CRF of --task "
            "sequence_labeling); --task translation_energy has none: choose from gd, infnet, "
            "tailored, warmstart")):
        solver_for("viterbi", "translation_energy", exact_available=False)
    assert solver_for("viterbi", "sequence_labeling", exact_available=True) is SOLVERS["viterbi"]


@pytest.mark.parametrize("name", ["infnet", "tailored", "warmstart"])
def test_infnet_solvers_need_an_infnet_and_compute_the_context_once(name):
    calls = []
    problem = Problem(energy=None, condition=lambda: calls.append(1) or "context",
                      mask=torch.ones(2, 3, dtype=torch.bool), num_choices=5, cfg=None)
    assert problem.shape == (2, 3, 5) and calls == []  # lazily, on first use only
    assert problem.context == problem.context == "context" and calls == [1]
    with pytest.raises(ValueError, match=f"--inference {name} runs an inference network: "
                                         "pass it as --path"):
        SOLVERS[name]().solve(problem)


@pytest.mark.parametrize("options, message", [
    ({"inference": "viterbi"}, "--inference viterbi needs an energy with an exact minimiser"),
    ({"inference": "gd", "energy_path": None}, "--inference gd needs --energy-path"),
    ({"inference": "warmstart", "max_iter": 2},
     "add --iter-decode-force-max-iter (or decode with --iter-decode-max-iter 0)"),
    ({"inference": "gd", "gd_oracle": True}, "--gd-oracle picks steps by gold labels"),
])
def test_translation_solver_options_are_checked(nat, options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load(nat, **options)


def test_both_tasks_share_the_solver_options_with_their_own_default():
    for config in (SequenceLabelingConfig, TranslationEnergyConfig):
        assert issubclass(config, SolverConfig)
    assert SequenceLabelingConfig().inference == "viterbi"
    assert TranslationEnergyConfig().inference == "infnet"


def test_translation_refuses_absurd_solver_settings_at_setup(nat):
    cfg = TranslationEnergyConfig(data=nat["data"], source_lang="src", target_lang="tgt",
                                  gd_lr=-1.0)
    with pytest.raises(ValueError, match="--gd-lr must be a finite number"):
        TranslationEnergyTask.setup_task(cfg)


def test_a_diverging_descent_names_the_sentences_once(nat):
    """A step size at the float32 limit overflows the logits; the error names each sentence
    of the batch by its id, once for its three length candidates."""
    models, generator, task = load(nat, inference="gd", gd_lr=3e38, beam=3)
    sample = whole_split(task, "test", 4)
    with pytest.raises(DivergedError, match=r"--inference gd diverged: ") as raised:
        generator.generate(models, sample)
    names = re.findall(r"id (\d+)", str(raised.value))
    assert names and len(names) == len(set(names))
    assert set(map(int, names)) <= set(sample["id"].tolist())
    assert "--gd-lr" in str(raised.value)


# ---------------------------------------------------------------------- the solvers
def test_gd_lowers_the_teacher_energy_monotonically(nat):
    """Plain gradient steps (no momentum) of a small size on the relaxed teacher energy
    never raise any sentence's energy, and the ``gd`` solver ends below its start."""
    _, generator, task = load(nat, inference="gd")
    energy = generator.energy
    sample = whole_split(task, "valid")
    context = energy.condition(sample["net_input"])
    _, mask = strip_nat_boundaries(sample["target"], task.tgt_dict.pad())
    start = torch.zeros(*mask.shape, energy.vocab_size)
    steps = list(range(11))
    path = descend(energy, context, mask, start, steps[-1], lr=0.5, momentum=0.0,
                   snapshot_steps=steps)[:-1]
    energies = torch.stack([energy.relaxed_energy(context, z, mask) for z in path])  # (11, B)
    assert (energies[1:] <= energies[:-1] + 1e-4).all()
    assert (energies[-1] < energies[0] - 1e-2).all()

    cfg = SimpleNamespace(gd_steps=10, gd_lr=0.5, gd_momentum=0.9, gd_init="zero",
                          gd_relaxation="sx", gd_oracle=False)
    problem = Problem(energy=energy, condition=lambda: context, mask=mask,
                      num_choices=energy.vocab_size, cfg=cfg)
    outputs, logits = GradientDescentSolver().solve(problem)
    assert outputs is None and logits.shape == start.shape
    assert (energy.relaxed_energy(context, logits, mask) < energies[0]).all()


@pytest.mark.parametrize("max_iter, beam", [(0, 1), (0, 3), (2, 3)])
@pytest.mark.parametrize("solver", [{"inference": "warmstart", "gd_steps": 0},
                                    {"inference": "tailored", "tailor_steps": 0}])
def test_solvers_with_no_steps_are_the_infnet(nat, max_iter, beam, solver):
    """Warm start with N = 0 writes the NAT's own argmax and scores, also at the last of
    several refinement steps; so does an untailored copy, which encodes the sources the
    wrapper followed through the length beam's reorders (misaligned, they would differ)."""
    steps = dict(max_iter=max_iter, beam=beam, force_max_iter=max_iter > 0)
    plain, _ = decode(nat, **steps)
    solved, report = decode(nat, **steps, **solver)
    assert len(plain) == len(solved) == 24
    for ours, stock in zip(solved, plain):
        assert torch.equal(ours[0]["tokens"], stock[0]["tokens"])
        torch.testing.assert_close(ours[0]["positional_scores"], stock[0]["positional_scores"])
    assert report.sentences == 24 and report.method == solver["inference"]


@pytest.mark.parametrize("optimizer, lr", [("sgd", 1e-3), ("adam", 1e-3)])
def test_warm_start_and_tailoring_lower_the_energy_and_leave_the_nat_unchanged(
        nat, optimizer, lr):
    """Both end below the infnet's relaxed teacher energy; the shared NAT's parameters are
    bit for bit those it had (tailoring fine-tunes a copy), with either optimiser."""
    _, infnet = decode(nat, inference="warmstart", gd_steps=0)
    _, warm = decode(nat, inference="warmstart", gd_steps=10, gd_lr=0.5)
    models, generator, task = load(nat, inference="tailored", tailor_steps=5, tailor_lr=lr,
                                   tailor_optimizer=optimizer)
    before = {k: v.clone() for k, v in models[0].state_dict().items()}
    generator.generate(models, whole_split(task, "test"))
    tailored = generator.report
    for name, value in models[0].state_dict().items():
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in models[0].parameters())
    assert warm.relaxed < infnet.relaxed and tailored.relaxed < infnet.relaxed


# ------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("inference, options", [
    ("gd", ["--gd-init", "random", "--gd-steps", "5", "--gd-lr", "0.5",
            "--iter-decode-max-iter", "0", "--iter-decode-with-beam", "3"]),
    ("warmstart", ["--gd-steps", "5", "--gd-lr", "0.5", "--iter-decode-max-iter", "0",
                   "--iter-decode-with-beam", "3", "--length-select", "energy"]),
    ("tailored", ["--tailor-steps", "2", "--tailor-lr", "1e-3", "--iter-decode-max-iter", "2",
                  "--iter-decode-force-max-iter", "--tailor-optimizer", "adam"]),
])
def test_every_translation_solver_runs_through_fairseq_generate(nat, inference, options):
    proc = run("generate", nat["data"], "--user-dir", PLUGIN, "--task", "translation_energy",
               "--path", nat["checkpoint"], "--energy-path", nat["teacher"],
               "--gen-subset", "test", "--batch-size", "8", "--cpu", "--num-workers", "0",
               "--inference", inference, *options)
    hypotheses = [line for line in proc.stdout.splitlines() if line.startswith("H-")]
    assert sorted(int(line.split("\t")[0][2:]) for line in hypotheses) == list(range(24))
    line = parse_score_line(proc.stdout.strip().splitlines()[-1])
    assert line.metric_name.startswith("BLEU")
    assert line.fields["inference"] == inference and line.fields["sentences"] == "24"
    for name in ("energy_relaxed", "energy", "sentences_per_s", "special_pad", "slots"):
        assert float(line.fields[name]) >= 0, name
