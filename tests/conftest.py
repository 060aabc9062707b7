"""Fixtures shared by several test modules."""

import pytest
import torch

from tests.fixtures.tiny_tagging import train_infnet, train_quickstart
from tests.fixtures.tiny_translation import train_tiny_teachers


@pytest.fixture(scope="session")
def tiny_teachers(tmp_path_factory):
    """Tiny transformer and LSTM teachers trained by stock ``fairseq-train`` on the tiny
    corpus (see :func:`tests.fixtures.tiny_translation.train_tiny_teachers`)."""
    return train_tiny_teachers(str(tmp_path_factory.mktemp("tiny_translation")))


@pytest.fixture(scope="session")
def quickstart(tmp_path_factory):
    """The quickstart corpus and a tiny BLSTM-CRF+ energy trained on it (see
    :func:`tests.fixtures.tiny_tagging.train_quickstart`)."""
    return train_quickstart(tmp_path_factory.mktemp("quickstart"))


@pytest.fixture(scope="session")
def quickstart_infnet(quickstart):
    """A tiny CNN inference network trained against the ``quickstart`` energy; its
    checkpoint path."""
    return train_infnet(quickstart)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The test models are tiny: extra threads only contend for the 2 CPU cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
