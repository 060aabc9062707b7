"""Options that several configs declare: fairseq keeps the first declaration of a repeated
option, so they must say the same thing."""

import dataclasses

import pytest
from fairseq import options

import engine_plugin  # noqa: F401  (registers the tasks and criteria)
from engine_plugin.criterions.energy_loss import EnergyLossConfig
from engine_plugin.tasks.sequence_labeling import SequenceLabelingConfig
from engine_plugin.tasks.translation_energy import TranslationEnergyConfig


def _help_of(option_name, argv):
    parser = options.get_training_parser()
    options.parse_args_and_arch(parser, argv)
    (action,) = [a for a in parser._actions if option_name in a.option_strings]
    return action.help


def _declared_help(config, name):
    (declared,) = [f for f in dataclasses.fields(config) if f.name == name]
    return declared.metadata["help"]


def test_energy_path_has_one_help_text():
    helps = {config.__name__: _declared_help(config, "energy_path")
             for config in (EnergyLossConfig, SequenceLabelingConfig, TranslationEnergyConfig)}
    assert len(set(helps.values())) == 1, helps
    # it is true of both tasks, at training and at generation
    (text,) = set(helps.values())
    for use in ("sequence_labeling", "translation_energy", "energy_loss", "--length-select"):
        assert use in text


@pytest.mark.parametrize("task, arch", [("sequence_labeling", "tagger_cnn"),
                                        ("translation_energy", "cmlm_infnet")])
def test_energy_path_help_of_the_command_line_is_that_text(task, arch):
    """What ``fairseq-train`` would list for ``--energy-path`` (task and criterion both
    declare it) is the shared text."""
    argv = ["BIN", "--user-dir", "engine_plugin", "--task", task, "--arch", arch,
            "--criterion", "energy_loss"]
    assert _help_of("--energy-path", argv) == _declared_help(EnergyLossConfig, "energy_path")
