"""--tensorboard-logdir (stock fairseq, with tensorboardX) and scripts/plot_training.py."""

import pytest

from scripts.plot_training import main as plot_main
from scripts.plot_training import read_log, read_tensorboard

ENERGY_LOSS = ("energy", "energy_discrete", "ce", "loss", "acc")
CURVES = {  # criterion -> split -> metrics (crf_nll decodes for accuracy in validation only;
    # energy_loss computes the discrete energy in validation only, without --log-train-energy)
    "crf_nll": {"train": ("loss", "loss_per_token"), "valid": ("loss", "acc")},
    "energy_loss": {"train": ("energy", "ce", "loss", "acc"), "valid": ENERGY_LOSS},
}


@pytest.fixture(scope="module")
def runs(quickstart, quickstart_infnet):
    """criterion -> the folder of a two-epoch run (train.log, tensorboard/)."""
    return {"crf_nll": quickstart.energy.parent, "energy_loss": quickstart_infnet.parent}


@pytest.mark.parametrize("criterion", sorted(CURVES))
def test_tensorboard_events_hold_the_logged_curves(runs, criterion):
    events = read_tensorboard(str(runs[criterion] / "tensorboard"))
    logged = read_log(str(runs[criterion] / "train.log"))
    for split, metrics in CURVES[criterion].items():
        for metric in metrics:
            points = events[split, metric]
            assert len(points) == 2, (split, metric)  # one per epoch
            # the same numbers as the printed log (which rounds them)
            assert [s for s, _ in points] == [s for s, _ in logged[split, metric]]
            for (_, value), (_, printed) in zip(points, logged[split, metric]):
                assert value == pytest.approx(printed, abs=0.01)


def test_plot_training_draws_logs_and_event_files(runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert plot_main([str(runs["energy_loss"] / "train.log"),
                      str(runs["crf_nll"] / "tensorboard"), "--labels", "infnet", "energy",
                      "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "energy, energy_discrete, ce, loss, acc of 2 run(s)" in capsys.readouterr().out
    assert plot_main([str(runs["crf_nll"] / "train.log"), "--metrics", "bleu",
                      "--out", str(out)]) == 2
    assert "bleu" in capsys.readouterr().err
    empty = tmp_path / "empty.log"
    empty.write_text("nothing here\n")
    assert plot_main([str(empty), "--out", str(out)]) == 2
    assert "no train/valid statistics" in capsys.readouterr().err


def test_log_reader_reads_json_logs(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        '2026-01-01 00:00:00 | INFO | valid | {"epoch": 1, "valid_loss": "2.5", '
        '"valid_bleu": "11.2", "valid_num_updates": "40"}\n'
        "2026-01-01 00:00:01 | INFO | train | epoch 001 | loss 3.1 | num_updates 40\n")
    curves = read_log(str(log))
    assert curves["valid", "bleu"] == [(40, 11.2)] and curves["train", "loss"] == [(40, 3.1)]
