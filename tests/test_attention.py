"""Attention (additive, general, dot): weights are a distribution over the real source positions only, padding
never changes a context vector, and all decoder steps at once equal one step at a time."""

import pytest
import torch

from recurrentkit.nn.attention import (
    ATTENTION_KINDS,
    AdditiveAttention,
    MultiplicativeAttention,
    build_attention,
    masked_softmax,
)

KINDS = [k for k in ATTENTION_KINDS if k != "none"]


def _memory(batch=3, steps=6, size=8):
    memory = torch.randn(batch, steps, size)
    lengths = torch.tensor([6, 3, 1])[:batch]
    mask = torch.arange(steps).unsqueeze(0) < lengths.unsqueeze(1)
    return memory, mask, lengths


@pytest.mark.parametrize("kind", KINDS)
def test_weights_sum_to_one_over_real_positions_and_are_zero_on_padding(kind):
    attention = build_attention(kind, 8, 8, attention_size=5)
    memory, mask, _ = _memory()
    context, weights = attention(torch.randn(3, 8), memory, mask)
    assert context.shape == (3, 8) and weights.shape == (3, 6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert torch.all(weights[~mask] == 0)
    assert torch.all(weights[mask] > 0)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_content_does_not_change_the_context(kind):
    attention = build_attention(kind, 8, 8)
    memory, mask, lengths = _memory()
    query = torch.randn(3, 8)
    garbage = memory.masked_fill(~mask.unsqueeze(-1), 1e3)
    torch.testing.assert_close(attention(query, memory, mask)[0], attention(query, garbage, mask)[0])
    for row, length in enumerate(lengths.tolist()):  # each row alone, unpadded
        alone, _ = attention(query[row:row + 1], memory[row:row + 1, :length])
        torch.testing.assert_close(alone[0], attention(query, memory, mask)[0][row])


@pytest.mark.parametrize("kind", KINDS)
def test_all_steps_at_once_equal_one_step_at_a_time(kind):
    attention = build_attention(kind, 8, 8)
    memory, mask, _ = _memory()
    queries = torch.randn(3, 4, 8)
    context, weights = attention(queries, memory, mask)
    for t in range(4):
        c_t, w_t = attention(queries[:, t], memory, mask)
        torch.testing.assert_close(context[:, t], c_t)
        torch.testing.assert_close(weights[:, t], w_t)


def test_additive_scores_follow_the_bahdanau_equation():
    attention = AdditiveAttention(4, 6, attention_size=5)
    query, memory = torch.randn(2, 4), torch.randn(2, 3, 6)
    _, weights = attention(query, memory)
    W_q, W_h, b, v = (attention.query_proj.weight, attention.memory_proj.weight, attention.memory_proj.bias,
                      attention.v.weight[0])
    for i in range(2):
        e = torch.stack([v @ torch.tanh(W_q @ query[i] + W_h @ memory[i, s] + b) for s in range(3)])
        torch.testing.assert_close(weights[i], torch.softmax(e, 0))


def test_general_and_dot_scores_follow_the_luong_equations():
    query, memory = torch.randn(2, 4), torch.randn(2, 3, 4)
    general = MultiplicativeAttention(4, 4, "general")
    _, weights = general(query, memory)
    W = general.memory_proj.weight
    for i in range(2):
        torch.testing.assert_close(weights[i], torch.softmax(torch.stack([query[i] @ W @ memory[i, s]
                                                                          for s in range(3)]), 0))
    _, weights = MultiplicativeAttention(4, 4, "dot")(query, memory)
    torch.testing.assert_close(weights, torch.softmax(torch.einsum("bd,bsd->bs", query, memory), -1))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="dot attention needs equal"):
        build_attention("dot", 4, 6)
    with pytest.raises(ValueError, match="unknown attention"):
        build_attention("cosine", 4, 4)
    assert build_attention("none", 4, 4) is None
    with pytest.raises(ValueError, match="no unmasked position"):
        masked_softmax(torch.randn(2, 3), torch.tensor([[True, False, False], [False, False, False]]))
    with pytest.raises(ValueError, match="memory must be"):
        build_attention("general", 4, 6)(torch.randn(2, 4), torch.randn(2, 3, 5))
