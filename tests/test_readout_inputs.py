"""Bad inputs to the ridge readout are named before the solve (not an MKL error or "no samples accumulated")."""

import pytest
import torch

from recurrentkit.nn.readout import RidgeReadout


def test_a_washout_longer_than_the_sequence_is_named():
    with pytest.raises(ValueError, match=r"washout=10 is not shorter than the sequence \(5 steps\)"):
        RidgeReadout(4, 1, washout=10).accumulate(torch.randn(5, 2, 4), torch.randn(5, 2, 1))


def test_nan_in_the_series_is_named_with_its_position():
    targets = torch.randn(5, 2, 1)
    targets[3, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="targets contain NaN .*time step 3, sequence 1"):
        RidgeReadout(4, 1).accumulate(torch.randn(5, 2, 4), targets)
