"""Trust: checkpoints load safely, wrong files and absurd settings fail with a message,
nothing is lost, and torchrun trains one distributed job on CPU.

Every trained model here comes from the stock ``fairseq-train`` (run in parallel, one
thread each) on tiny corpora: the tagging one of the quickstart and the translation one of
``tests/fixtures/tiny_translation.py``.
"""

import os
import socket
import subprocess
import sys

import pytest
import torch

import engine_plugin  # noqa: F401  (applies the fixes)
from engine_plugin.safe_load import (
    FAIRSEQ_SAFE_GLOBALS,
    UNSAFE_LOAD_ENV,
    CheckpointError,
    safe_torch_load,
)
from examples.quickstart.make_corpus import write_corpus
from fairseq import checkpoint_utils
from fairseq.models import ARCH_MODEL_REGISTRY
from tests.cli import ROOT, preprocess_tagging, run
from tests.fixtures.tiny_translation import PLUGIN, run_all

SIZES = ["--embed-dim", "8", "--hidden-size", "8"]
TAGGING = ["--user-dir", PLUGIN, "--task", "sequence_labeling", "--optimizer", "adam",
           "--lr", "0.01", "--batch-size", "8", "--cpu", "--seed", "1", "--num-workers", "0",
           "--no-epoch-checkpoints", "--log-format", "simple", *SIZES]
TAGGING_ARCHS = ["blstm_crf", "blstm_crf_plus"] + [
    f"tagger_{kind}{plus}" for kind in ("cnn", "blstm", "seq2seq") for plus in ("", "_plus")]
NAT = {
    "cmlm_infnet": ["--encoder-layers", "1", "--decoder-layers", "1",
                    "--encoder-embed-dim", "16", "--decoder-embed-dim", "16",
                    "--encoder-ffn-embed-dim", "16", "--decoder-ffn-embed-dim", "16",
                    "--encoder-attention-heads", "2", "--decoder-attention-heads", "2"],
    "bilstm_infnet": ["--embed-dim", "16", "--hidden-size", "16"],
}
EVAL_BLEU = ["--eval-bleu", "--best-checkpoint-metric", "bleu",
             "--maximize-best-checkpoint-metric"]


def tagging_run(data, arch, save, *extra):
    criterion = ["--criterion", "crf_nll"] if arch.startswith("blstm_crf") else [
        "--criterion", "energy_loss", "--energy-weight", "0"]
    return [data, *TAGGING, "--arch", arch, *criterion, "--max-update", "2",
            "--save-dir", save, *extra]


def nat_run(data, arch, save, teacher, *extra):
    return [data, "--user-dir", PLUGIN, "--task", "translation_energy", "--arch", arch,
            *NAT[arch], "--criterion", "energy_loss", "--energy-path", teacher, "--cpu",
            "--optimizer", "adam", "--lr", "0.001", "--batch-size", "32", "--seed", "1",
            "--num-workers", "0", "--no-progress-bar", "--no-epoch-checkpoints",
            "--max-update", "2", "--save-dir", save, *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_teachers):
    """One checkpoint of every architecture this plugin registers (two updates each), and
    translation checkpoints saved with ``--eval-bleu``; ``{"arch": path}``."""
    root = tmp_path_factory.mktemp("trust")
    write_corpus(root / "raw", {"train": 48, "valid": 8, "test": 8}, seed=2)
    preprocess_tagging(root / "raw", root / "bin")
    data, teachers = tiny_teachers["data"], tiny_teachers["checkpoints"]
    teacher_of = {"cmlm_infnet": teachers["transformer"], "bilstm_infnet": teachers["lstm"]}
    runs = {arch: tagging_run(root / "bin", arch, root / arch) for arch in TAGGING_ARCHS}
    for arch, teacher in teacher_of.items():
        runs[arch] = nat_run(data, arch, root / arch, teacher)
    runs["cmlm_infnet+eval_bleu"] = nat_run(
        data, "cmlm_infnet", root / "cmlm_bleu", teachers["transformer"], *EVAL_BLEU,
        "--eval-bleu-args", '{"iter_decode_max_iter": 0}')
    runs["transformer+eval_bleu"] = [
        data, "--task", "translation", "--arch", "transformer", *NAT["cmlm_infnet"], "--cpu",
        "--optimizer", "adam", "--lr", "0.001", "--batch-size", "32", "--max-update", "2",
        "--num-workers", "0", "--no-epoch-checkpoints", "--save-dir", root / "teacher_bleu",
        *EVAL_BLEU]
    run_all("train", list(runs.values()), str(root / "logs"))
    checkpoints = {name: os.path.join(run[run.index("--save-dir") + 1], "checkpoint_last.pt")
                   for name, run in runs.items()}
    return {"root": root, "bin": root / "bin", "checkpoints": checkpoints,
            "crf": checkpoints["blstm_crf"], "teachers": teachers, "data": data}


def plugin_architectures():
    return sorted(a for a, m in ARCH_MODEL_REGISTRY.items()
                  if m.__module__.startswith("engine_plugin."))


def test_every_architecture_loads_under_the_safe_default(trained):
    assert set(plugin_architectures()) <= set(trained["checkpoints"])
    allowed = {f"{g.__module__}.{g.__qualname__}" for g in FAIRSEQ_SAFE_GLOBALS}
    for name, path in trained["checkpoints"].items():
        needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        assert needed <= allowed, (name, needed - allowed)
        assert "model" in safe_torch_load(path, map_location="cpu")
    needed_with_bleu = torch.serialization.get_unsafe_globals_in_checkpoint(
        trained["checkpoints"]["cmlm_infnet+eval_bleu"])
    assert any(name.startswith("numpy") for name in needed_with_bleu)
    # and fairseq builds the models from them (the generator's path)
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task(
        [trained["checkpoints"]["cmlm_infnet+eval_bleu"]])
    assert type(models[0]).__name__ == "CMLMInfnet"


# ------------------------------------------------------------------ hostile and wrong files
class Evil:
    """Unpickled, it creates the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_evil(path, marker, like=None):
    """Writes a checkpoint (a real one's content when ``like`` is given) that runs code."""
    state = torch.load(like, weights_only=False) if like else {"model": {}}
    state["payload"] = Evil(marker)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(state, path)
    return path


def run_many(commands):
    """Runs the commands in fresh interpreters, in parallel (one thread each): the test of
    malicious checkpoints needs the user's process, where the plugin's safe loading comes
    from ``--user-dir`` alone. Returns ``(process, stdout, stderr)`` per command."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop(UNSAFE_LOAD_ENV, None)
    procs = [subprocess.Popen([sys.executable, *map(str, c)], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
    return [(p, *p.communicate()) for p in procs]


def fairseq(tool, *args):
    """``fairseq-<tool> ARGS`` (:func:`tests.cli.run`, not checked): ``(process, stdout,
    stderr)``."""
    proc = run(tool, *args, check=False)
    return proc, proc.stdout, proc.stderr


def test_malicious_checkpoints_never_run(trained, tmp_path):
    crf, bin_dir = trained["crf"], trained["bin"]
    marker = tmp_path / "pwned"
    evil = plant_evil(str(tmp_path / "evil.pt"), marker, like=crf)
    resume = plant_evil(str(tmp_path / "resume" / "checkpoint_last.pt"), marker, like=crf)
    generate = ["-m", "fairseq_cli.generate", bin_dir, "--user-dir", PLUGIN, "--task",
                "sequence_labeling", "--gen-subset", "test", "--cpu"]
    infnet = trained["checkpoints"]["tagger_cnn"]
    commands = [
        [*generate, "--path", evil],
        [*generate, "--path", infnet, "--inference", "infnet", "--energy-path", evil],
        ["-m", "fairseq_cli.train", *tagging_run(bin_dir, "blstm_crf", tmp_path / "ft",
                                                "--finetune-from-model", evil)],
        ["-m", "fairseq_cli.train", *tagging_run(bin_dir, "blstm_crf", tmp_path / "resume")],
        ["-m", "fairseq_cli.train", *tagging_run(bin_dir, "tagger_cnn", tmp_path / "inf")[:-4],
         "--criterion", "energy_loss", "--energy-path", evil, "--max-update", "1",
         "--save-dir", tmp_path / "inf"],
        ["scripts/energy_to_infnet.py", evil, tmp_path / "out.pt"],
    ]
    for (proc, out, err), command in zip(run_many(commands), commands):
        assert proc.returncode != 0, command
        named = evil if evil in map(str, command) else resume
        assert f"refusing to load {named}" in err, (command, err[-2000:])
        assert UNSAFE_LOAD_ENV in err
    assert not marker.exists()
    assert not (tmp_path / "out.pt").exists()


def test_unsafe_load_is_an_explicit_opt_in(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    evil = plant_evil(str(tmp_path / "old.pt"), marker)
    load = checkpoint_utils.torch.load  # what fairseq's load_checkpoint_to_cpu calls
    with pytest.raises(CheckpointError, match="io.open"):
        load(evil)
    assert not marker.exists()
    monkeypatch.setenv(UNSAFE_LOAD_ENV, "1")
    load(evil)
    assert marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint\n", b"PK\x03\x04truncated"])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{path} is not a fairseq checkpoint"):
        checkpoint_utils.load_checkpoint_to_cpu(str(path))


def test_model_class_of_reads_every_kind_of_model_config():
    """One lookup for checkpoint_model, require_tagging_model and translation_energy's
    build_model: a saved dict, a DictConfig, an old Namespace, an architecture alias."""
    import argparse

    from omegaconf import OmegaConf

    from engine_plugin.checkpoints import checkpoint_model, model_class_of
    from engine_plugin.models.blstm_crf import BLSTMCRFModel
    from fairseq.models.transformer import TransformerModel

    plus = {"_name": "blstm_crf", "arch": "blstm_crf_plus"}
    for config in (plus, OmegaConf.create(plus), argparse.Namespace(arch="blstm_crf_plus")):
        assert model_class_of(config) == ("blstm_crf_plus", BLSTMCRFModel)
    assert model_class_of({"_name": "transformer"}) == ("transformer", TransformerModel)
    assert model_class_of({"_name": "no_such_model"}) == ("no_such_model", None)
    assert model_class_of(None) == (None, None)
    old = {"args": argparse.Namespace(task="translation", arch="transformer")}
    assert checkpoint_model(old) == ("translation", "transformer", TransformerModel)
    assert checkpoint_model({"cfg": {"task": {}, "model": None}}) == ("?", "?", None)


def generate_tagging(trained, *args):
    return fairseq("generate", trained["bin"], "--user-dir", PLUGIN, "--task",
                   "sequence_labeling", "--gen-subset", "test", "--cpu", "--batch-size", "4",
                   *args)


def test_wrong_files_give_sentences(trained, tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("these are notes\n")
    teacher, infnet = trained["teachers"]["transformer"], trained["checkpoints"]["tagger_cnn"]
    nat = trained["checkpoints"]["cmlm_infnet"]
    cases = [
        (["--path", text], f"{text} is not a fairseq checkpoint"),
        (["--path", infnet, "--inference", "infnet", "--energy-path", text],
         f"{text} is not a fairseq checkpoint"),
        (["--path", teacher], f"{teacher}: the checkpoint holds a transformer model, but "
                              "--task sequence_labeling needs"),
        (["--path", infnet, "--inference", "infnet", "--energy-path", teacher],
         f"{teacher} holds a transformer model trained with --task translation, but this "
         "needs a CRF energy"),
        (["--path", infnet, "--inference", "infnet", "--energy-path", infnet],
         "holds a tagger_cnn model trained with --task sequence_labeling, but this needs a "
         "CRF energy"),
    ]
    results = [fairseq("generate", trained["bin"], "--user-dir", PLUGIN, "--task",
                       "sequence_labeling", "--gen-subset", "test", "--cpu", *args)
               for args, _ in cases] + [
        fairseq("generate", trained["data"], "--user-dir", PLUGIN, "--task",
                "translation_energy", "--path", teacher, "--cpu", "--gen-subset", "test"),
        fairseq("generate", trained["data"], "--user-dir", PLUGIN, "--task",
                "translation_energy", "--path", nat, "--cpu", "--gen-subset", "test",
                "--length-select", "energy", "--energy-path", trained["crf"])]
    messages = [m for _, m in cases] + [
        "translation_energy trains and decodes non-autoregressive models",
        "but this needs an autoregressive translation model"]
    for (proc, _, err), message in zip(results, messages):
        assert proc.returncode != 0 and message in err, (message, err[-1500:])


def test_dictionary_mismatch_names_the_checkpoint(trained, tmp_path):
    _other_vocabulary(tmp_path / "raw")
    preprocess_tagging(tmp_path / "raw", tmp_path / "bin")
    proc, _, err = fairseq("generate", tmp_path / "bin", "--user-dir", PLUGIN, "--task",
                           "sequence_labeling", "--path", trained["crf"], "--gen-subset",
                           "test", "--cpu")
    assert proc.returncode != 0
    assert f"{trained['crf']}: the checkpoint was trained with other word/label dictionaries" \
        in err, err[-1500:]


def _other_vocabulary(raw):
    """A tagging corpus whose words are not the quickstart's (so its dictionary differs)."""
    os.makedirs(raw, exist_ok=True)
    for split in ("train", "valid", "test"):
        with open(os.path.join(raw, f"{split}.words"), "w") as words, \
                open(os.path.join(raw, f"{split}.tags"), "w") as tags:
            for i in range(6):
                words.write(f"zz{i} yy{i % 3}\n")
                tags.write("N V\n")


def test_infnet_decoded_against_another_energy_warns(trained, tmp_path):
    infnet_dir = tmp_path / "infnet"
    crf, other = trained["crf"], trained["checkpoints"]["blstm_crf_plus"]
    train = tagging_run(trained["bin"], "tagger_cnn", infnet_dir)
    run_all("train", [[*train[:train.index("--criterion")], "--criterion", "energy_loss",
                       "--energy-path", crf, "--max-update", "1", "--save-dir", infnet_dir]],
            str(tmp_path / "logs"))
    infnet = infnet_dir / "checkpoint_last.pt"
    moved = tmp_path / "copy_of_crf.pt"
    moved.write_bytes(open(crf, "rb").read())
    warning = "the inference network was trained against the energy"
    for energy, warns in ((crf, False), (moved, False), (other, True)):
        proc, _, err = generate_tagging(trained, "--path", infnet, "--inference", "infnet",
                                        "--energy-path", energy)
        assert proc.returncode == 0, err[-1500:]
        assert (warning in err) == warns, (energy, err[-1500:])


# ------------------------------------------------------------------------- solver settings
@pytest.mark.parametrize("flag,value", [
    ("--gd-lr", "inf"), ("--gd-lr", "nan"), ("--gd-lr", "-1"), ("--gd-lr", "0"),
    ("--gd-lr", "1e39"),
    ("--gd-steps", "-3"), ("--tailor-lr", "-0.1"), ("--tailor-steps", "-1"),
    ("--gd-momentum", "1.5"), ("--gd-oracle-lrs", "10,nan"), ("--gd-oracle-steps", "5,-1"),
])
def test_absurd_solver_settings_are_refused_at_start(trained, flag, value):
    from engine_plugin.tasks.sequence_labeling import SequenceLabelingConfig, SequenceLabelingTask

    name = flag[2:].replace("-", "_")
    default = getattr(SequenceLabelingConfig(), name)
    cast = type(default)
    cfg = SequenceLabelingConfig(data=str(trained["bin"]),
                                 **{name: value if cast is str else cast(float(value))})
    with pytest.raises(ValueError, match=flag):
        SequenceLabelingTask.setup_task(cfg)


def scaled_energy(crf, path, factor):
    """A copy of the CRF checkpoint ``crf`` whose emission and transition scores are
    ``factor`` times larger (still finite in float32)."""
    state = torch.load(crf, weights_only=False)
    for name in ("emission.weight", "emission.bias", "crf.transitions"):
        state["model"][name] = state["model"][name] * factor
    torch.save(state, path)
    return path


def test_diverging_descent_stops_naming_the_sentence(trained, tmp_path):
    crf = scaled_energy(trained["crf"], tmp_path / "steep.pt", 1e30)
    infnet = trained["checkpoints"]["tagger_cnn"]
    results = [generate_tagging(trained, *args) for args in (
        ["--path", crf, "--inference", "gd", "--gd-lr", "1e10"],
        ["--path", infnet, "--energy-path", crf, "--inference", "warmstart", "--gd-lr", "1e10"],
        ["--path", crf, "--inference", "gd", "--gd-lr", "inf"])]
    for proc, out, err in results[:2]:
        assert proc.returncode != 0, (out + err)[-1500:]
        assert "diverged: non-finite logits or energy after step" in err, err[-1500:]
        assert "for sentence(s) id " in err and "--gd-lr" in err
        assert "Accuracy" not in out
    proc, _, err = results[2]
    assert proc.returncode != 0 and "--gd-lr must be a finite number" in err
    assert "got inf" in err


def test_diverging_tailoring_names_the_row(trained):
    from engine_plugin.energies.crf_energy import CRFEnergy
    from engine_plugin.solvers.checks import DivergedError
    from engine_plugin.solvers.tailoring import tailor

    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [trained["checkpoints"]["tagger_cnn"]])
    energy = CRFEnergy.from_checkpoint(trained["crf"], task)
    task.load_dataset("test")
    batch = task.dataset("test").collater([task.dataset("test")[i] for i in range(3)])
    before = {k: v.clone() for k, v in models[0].state_dict().items()}
    with pytest.raises(DivergedError, match="--tailor-lr"):
        tailor(models[0], energy, batch["net_input"], steps=3, lr=1e38)
    assert all(torch.equal(before[k], v) for k, v in models[0].state_dict().items())


# ------------------------------------------------------------------------- nothing lost
def test_checkpoint_copies_are_atomic(tmp_path, monkeypatch):
    from engine_plugin import checkpoint_files

    src, dst = tmp_path / "checkpoint_last.pt", tmp_path / "checkpoint_best.pt"
    src.write_bytes(b"new" * 1000)
    dst.write_bytes(b"old")
    assert checkpoint_utils.PathManager.copy is checkpoint_files.atomic_copy  # fairseq's copy

    def killed_midway(a, b):
        with open(b, "wb") as f:
            f.write(b"ne")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint_files.shutil, "copyfile", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        checkpoint_utils.PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == [dst.name, src.name]
    monkeypatch.undo()
    assert checkpoint_utils.PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == src.read_bytes()


def test_resume_falls_back_to_the_newest_readable_checkpoint(trained, tmp_path):
    save = tmp_path / "crf"
    first = tagging_run(trained["bin"], "blstm_crf", save)
    first[first.index("--max-update"):first.index("--max-update") + 2] = ["--max-epoch", "1"]
    run_all("train", [first], str(tmp_path / "logs"))
    last = save / "checkpoint_last.pt"
    updates = safe_torch_load(str(last))["optimizer_history"][-1]["num_updates"]
    last.write_bytes(last.read_bytes()[:1000])  # what a kill during a copy leaves
    again = [*first[:first.index("--max-epoch")], "--max-epoch", "2",
             *first[first.index("--max-epoch") + 2:]]
    proc, out, err = fairseq("train", *again)
    log = out + err  # fairseq logs to stdout
    assert proc.returncode == 0, log[-2000:]
    assert f"{last} is unreadable" in log and "resuming from" in log
    assert "checkpoint_best.pt" in log.split("resuming from")[1].splitlines()[0]
    # the second epoch continued the first: twice its updates
    assert safe_torch_load(str(last))["optimizer_history"][-1]["num_updates"] == 2 * updates
    # nothing readable to fall back to: a clear error, no training from scratch
    for path in save.iterdir():
        path.write_bytes(b"")
    proc, _, err = fairseq("train", *again)
    assert proc.returncode != 0 and "No other readable checkpoint" in err


def test_the_resume_fallback_reads_each_checkpoint_once(tmp_path):
    """Unit test of the wrapper around fairseq's load_checkpoint: the newest other
    checkpoint is tried first, an unreadable one moves on to the next, no file is read
    twice, and an unsafe one stops the resume."""
    from types import SimpleNamespace

    from engine_plugin.checkpoint_files import resume_from_readable
    from engine_plugin.safe_load import UnreadableCheckpointError, UnsafeCheckpointError

    for age, name in enumerate(["checkpoint_last.pt", "checkpoint_best.pt", "checkpoint2.pt",
                                "checkpoint1.pt"]):
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (1000 - age, 1000 - age))
    broken = {str(tmp_path / "checkpoint_last.pt"): UnreadableCheckpointError,
              str(tmp_path / "checkpoint_best.pt"): UnreadableCheckpointError}
    reads = []

    def load_checkpoint(cfg, trainer, **kwargs):  # fairseq's, reading cfg.restore_file
        path = str(tmp_path / cfg.restore_file) if cfg.restore_file == "checkpoint_last.pt" \
            else cfg.restore_file
        reads.append(os.path.basename(path))
        if path in broken:
            raise broken[path](path, f"{path} is broken")
        return "state of " + os.path.basename(path)

    def resume():
        reads.clear()
        cfg = SimpleNamespace(save_dir=str(tmp_path), restore_file="checkpoint_last.pt",
                              finetune_from_model="START.pt")
        return resume_from_readable(load_checkpoint)(cfg, SimpleNamespace(checkpoint_suffix=""))

    assert resume() == "state of checkpoint2.pt"
    assert reads == ["checkpoint_last.pt", "checkpoint_best.pt", "checkpoint2.pt"]
    broken[str(tmp_path / "checkpoint2.pt")] = UnsafeCheckpointError
    with pytest.raises(UnsafeCheckpointError):
        resume()
    assert reads == ["checkpoint_last.pt", "checkpoint_best.pt", "checkpoint2.pt"]
    broken[str(tmp_path / "checkpoint2.pt")] = broken[str(tmp_path / "checkpoint1.pt")] = \
        UnreadableCheckpointError
    with pytest.raises(UnreadableCheckpointError, match="No other readable checkpoint"):
        resume()
    assert len(reads) == len(set(reads)) == 4


# ------------------------------------------------------------------- distributed training
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(ranks, *fairseq_train_args):
    return ["-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-addr",
            "127.0.0.1", "--master-port", str(free_port()), "-m", "fairseq_cli.train",
            *fairseq_train_args]


def test_torchrun_trains_one_job_equal_to_update_freq(trained, tmp_path):
    """2 gloo ranks on 127.0.0.1 = one process with --update-freq 2, for a CRF energy and for
    an infnet against a frozen energy, which stays out of DDP, the optimiser and the files."""
    crf = trained["crf"]
    crf_bytes = open(crf, "rb").read()
    energy = ["--criterion", "energy_loss", "--energy-path", crf, "--energy-weight", "1"]
    jobs = {"crf_nll": ("blstm_crf", []), "energy_loss": ("tagger_blstm", energy)}
    commands = []
    for name, (arch, criterion) in jobs.items():
        for kind in ("ddp", "single"):
            args = [*tagging_run(trained["bin"], arch, tmp_path / name / kind), *criterion,
                    "--max-update", "3", "--dropout", "0"]
            commands.append(torchrun(2, *args) if kind == "ddp" else
                            ["-m", "fairseq_cli.train", *args, "--update-freq", "2"])
    for proc, out, err in run_many(commands):
        assert proc.returncode == 0, (out + err)[-3000:]
    for name, (arch, _) in jobs.items():
        ddp, single = (safe_torch_load(str(tmp_path / name / kind / "checkpoint_last.pt"))
                       for kind in ("ddp", "single"))
        assert ddp["cfg"]["distributed_training"]["distributed_world_size"] == 2
        assert ddp["optimizer_history"][-1]["num_updates"] == 3
        assert set(ddp["model"]) == set(single["model"])
        for key, value in single["model"].items():
            torch.testing.assert_close(ddp["model"][key], value, rtol=1e-5, atol=1e-6)
        # only the trained model's tensors are saved and optimised, never the energy's
        trained_names = set(safe_torch_load(trained["checkpoints"][arch])["model"])
        assert set(ddp["model"]) == trained_names
        assert len(ddp["last_optimizer_state"]["state"]) == len(ddp["model"])
        assert not ddp.get("criterion")
    assert open(crf, "rb").read() == crf_bytes


def test_cpu_world_size_without_torchrun_fails_with_the_command(trained, tmp_path):
    args = tagging_run(trained["bin"], "blstm_crf", tmp_path / "x")
    proc, _, err = run_many([["-m", "fairseq_cli.train", *args, "--distributed-world-size",
                              "2"]])[0]
    assert proc.returncode != 0
    assert "torchrun --nproc-per-node 2 $(which fairseq-train)" in err
    assert not (tmp_path / "x").exists()
