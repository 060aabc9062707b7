"""scripts/bench_crf.py's contestants agree: our nll, marginals and Viterbi equal
pytorch-crf's, torch-struct's and the previous CRF's on the same potentials (full and ragged masks)."""

import argparse

import pytest

from scripts.bench_crf import check_agreement, contestants, load_before


@pytest.mark.parametrize("ragged", [False, True])
def test_contestants_agree_on_small_problems(ragged):
    pytest.importorskip("torchcrf")
    pytest.importorskip("torch_struct")
    args = argparse.Namespace(batch=3, length=6, seed=0, struct=True, struct_max_gb=1.0)
    try:
        before = load_before()
    except LookupError as error:  # a shallow clone without the previous CRF's revision
        pytest.skip(str(error))
    tasks, (_, mask) = contestants(5, ragged, args, before)
    assert {"ours", "torchcrf", "torchstruct", "before"} <= set(tasks["nll"])
    check_agreement(tasks, mask)  # raises AssertionError on any disagreement
