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


def test_a_batch_with_nan_leaves_the_statistics_unchanged():
    readout = RidgeReadout(4, 1)
    readout.accumulate(torch.randn(6, 2, 4), torch.randn(6, 2, 1))
    before = readout.xtx.clone(), readout.xty.clone()
    states = torch.randn(5, 2, 4)
    states[2, 0, 3] = float("inf")
    with pytest.raises(ValueError, match="reservoir states contain NaN or infinite values .*time step 2, sequence 0"):
        readout.accumulate(states, torch.randn(5, 2, 1))
    assert torch.equal(readout.xtx, before[0]) and torch.equal(readout.xty, before[1])


def test_nan_in_rows_left_out_is_ignored():
    """Only the rows that enter the fit are checked: a NaN in the washout or under the mask changes nothing."""
    torch.manual_seed(0)
    states, targets = torch.randn(8, 3, 4), torch.randn(8, 3, 1)
    mask = torch.ones(8, 3, dtype=torch.bool)
    mask[5, 2] = False
    clean = RidgeReadout(4, 1, ridge=1e-3, washout=2)
    clean.accumulate(states, targets, mask=mask)
    dirty_states, dirty_targets = states.clone(), targets.clone()
    dirty_states[1, 0, 0] = float("nan")  # in the washout
    dirty_targets[5, 2, 0] = float("nan")  # masked out
    dirty = RidgeReadout(4, 1, ridge=1e-3, washout=2)
    dirty.accumulate(dirty_states, dirty_targets, mask=mask)
    assert torch.equal(clean.xtx, dirty.xtx) and torch.equal(clean.xty, dirty.xty)


def test_chunked_statistics_equal_one_float64_product():
    torch.manual_seed(0)
    states, targets = torch.randn(50, 4), torch.randn(50, 2)
    readout = RidgeReadout(4, 2)
    readout.chunk_rows = 7  # seven full chunks and a short last one, through one reused buffer
    readout.accumulate(states, targets)
    design = torch.cat([states.double(), torch.ones(50, 1, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(readout.xtx, design.T @ design, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(readout.xty, design.T @ targets.double(), rtol=1e-12, atol=1e-12)
