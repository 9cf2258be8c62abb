"""Pooling over time: padded steps never matter, and each mode computes what it says."""

import pytest
import torch

from recurrentkit.nn.pooling import POOLING_MODES, SequencePooling, last_pool, length_mask, max_pool, mean_pool

LENGTHS = torch.tensor([5, 2, 7, 1])


def _outputs(features=6):
    return torch.randn(len(LENGTHS), int(LENGTHS.max()), features)


@pytest.mark.parametrize("mode", POOLING_MODES)
@pytest.mark.parametrize("directions", [1, 2])
def test_pooling_ignores_padding(mode, directions):
    pool = SequencePooling(mode, input_size=6, num_directions=directions)
    outputs = _outputs()
    pad = ~length_mask(LENGTHS, outputs.shape[1], outputs.shape[0]).unsqueeze(-1).expand_as(outputs)
    reference = pool(outputs, LENGTHS)
    for fill in (1e6, -1e6, float("nan"), float("inf")):
        changed = outputs.masked_fill(pad, fill)
        torch.testing.assert_close(pool(changed, LENGTHS), reference)
    # and random garbage at the padded steps
    garbage = torch.where(pad, torch.randn_like(outputs) * 100, outputs)
    torch.testing.assert_close(pool(garbage, LENGTHS), reference)
    # each sample pooled alone over its real steps gives its row
    for i, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(pool(outputs[i:i + 1, :n], torch.tensor([n])), reference[i:i + 1])


def test_last_takes_forward_end_and_backward_start():
    outputs = _outputs(features=6)
    got = last_pool(outputs, LENGTHS, num_directions=2)
    for i, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(got[i, :3], outputs[i, n - 1, :3])  # forward: its output at the last real step
        torch.testing.assert_close(got[i, 3:], outputs[i, 0, 3:])  # backward: its final output sits at t = 0
    torch.testing.assert_close(last_pool(outputs, LENGTHS, 1), outputs[torch.arange(4), LENGTHS - 1])


def test_mean_and_max_over_real_steps():
    outputs = _outputs()
    mean, high = mean_pool(outputs, LENGTHS), max_pool(outputs, LENGTHS)
    for i, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(mean[i], outputs[i, :n].mean(0))
        torch.testing.assert_close(high[i], outputs[i, :n].amax(0))
    torch.testing.assert_close(mean_pool(outputs), outputs.mean(1))  # lengths=None: every step is real


def test_attention_weights_are_a_distribution_over_real_steps():
    pool = SequencePooling("attention", input_size=6)
    weights = pool.attention.weights(_outputs(), LENGTHS)
    torch.testing.assert_close(weights.sum(1), torch.ones(4))
    assert (weights[~length_mask(LENGTHS, weights.shape[1], 4)] == 0).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="pooling must be one of"):
        SequencePooling("median", input_size=4)
    with pytest.raises(ValueError, match="attention pooling needs input_size"):
        SequencePooling("attention")
    with pytest.raises(ValueError, match="batch-first"):
        SequencePooling("mean", 4)(torch.randn(3, 4))
    with pytest.raises(ValueError, match="directions"):
        last_pool(torch.randn(2, 3, 5), None, num_directions=2)
