"""engine_plugin.masks.check_mask: one validation of prefix masks for the CRF and the
translation energy, whose errors name the tensor they are about."""

import pytest
import torch

from engine_plugin.crf import LinearChainCRF
from engine_plugin.masks import check_mask


def test_a_missing_mask_is_all_real_positions():
    mask = check_mask(torch.zeros(2, 3, 5), None, "distributions")
    assert mask.dtype == torch.bool and mask.shape == (2, 3) and mask.all()


@pytest.mark.parametrize("mask, problem", [
    (torch.tensor([[True, True, False], [False, False, False]]), "at least one token"),
    (torch.tensor([[True, False, True], [True, True, True]]), "contiguous prefixes"),
    (torch.ones(2, 4, dtype=torch.bool), r"mask shape \(2, 4\) does not match distributions"),
])
def test_bad_masks_name_the_tensor(mask, problem):
    with pytest.raises(ValueError, match=problem) as error:
        check_mask(torch.zeros(2, 3, 5), mask, "distributions")
    assert "distributions" in str(error.value) and "emissions" not in str(error.value)


def test_the_crf_names_its_emissions():
    with pytest.raises(ValueError, match="emissions must have shape"):
        LinearChainCRF(3).viterbi(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="sequence of emissions needs at least one token"):
        LinearChainCRF(3).viterbi(torch.zeros(1, 2, 3), torch.tensor([[False, False]]))
