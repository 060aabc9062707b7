"""``TaggingGenerator`` decoding options: which methods accept --nbest / --constrain-labels."""

from types import SimpleNamespace

import pytest

from engine_plugin.data.labels import LabelSpace
from engine_plugin.tagging_generator import _decoding_options
from fairseq.data import Dictionary


def _labels(names):
    d = Dictionary()
    for name in names:
        d.add_symbol(name)
    return LabelSpace(d)


BIO = _labels(["O", "B-X", "I-X"])


@pytest.mark.parametrize("method", ["gd", "infnet", "tailored", "warmstart"])
def test_approximate_methods_refuse_nbest_and_constraints(method):
    with pytest.raises(ValueError, match=rf"--nbest 3 needs --inference viterbi.*{method}"):
        _decoding_options(method, SimpleNamespace(constrain_labels=False), BIO, 3)
    with pytest.raises(ValueError, match="--constrain-labels applies to --inference viterbi"):
        _decoding_options(method, SimpleNamespace(constrain_labels=True), BIO, 1)
    assert _decoding_options(method, SimpleNamespace(constrain_labels=False), BIO, 1) == (1, None)


def test_viterbi_gets_the_constraints_of_the_label_names():
    nbest, constraints = _decoding_options("viterbi", SimpleNamespace(constrain_labels=True), BIO, 4)
    assert nbest == 4
    assert constraints.start.tolist() == [True, True, False]
    assert not constraints.transitions[0, 2] and constraints.transitions[1, 2]
    with pytest.raises(ValueError, match="--nbest must be at least 1, got 0"):
        _decoding_options("viterbi", SimpleNamespace(constrain_labels=False), BIO, 0)
