"""RNNLanguageModel: any cell, state carrying, tying, regularisers, output layers."""

import pytest
import torch

from recurrentkit.cells.base import detach_state
from recurrentkit.models import RNNLanguageModel
from recurrentkit.nn.dropout import WeightDrop

V = 30


def _tokens(b=3, t=12, seed=0):
    return torch.randint(0, V, (b, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman", "leaky", "simplified_gru"])
def test_forward_shapes_and_log_probs(cell):
    torch.manual_seed(0)
    model = RNNLanguageModel(V, embedding_size=8, hidden_size=10, num_layers=2, cell=cell)
    x = _tokens()
    hidden, state = model(x)
    assert hidden.shape == (3, 12, 10) and len(state) == 2
    logp = model.log_probs(hidden)
    assert logp.shape == (3, 12, V)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 12), atol=1e-5)
    loss = model.loss(hidden, x)
    assert torch.allclose(loss, -logp.gather(-1, x.unsqueeze(-1)).mean(), atol=1e-5)


@pytest.mark.parametrize("cell", ["lstm", "leaky"])
def test_two_carried_halves_equal_one_pass(cell):
    torch.manual_seed(0)
    model = RNNLanguageModel(V, embedding_size=8, hidden_size=10, num_layers=2, cell=cell)
    x, y = _tokens(t=13)[:, :-1], _tokens(t=13)[:, 1:]
    hidden, _ = model(x)
    full = model.loss(hidden, y)
    full.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    h1, s1 = model(x[:, :6])
    h2, _ = model(x[:, 6:], s1)  # not detached: gradients flow through the carried state
    halves = (model.loss(h1, y[:, :6]) + model.loss(h2, y[:, 6:])) / 2
    assert torch.allclose(halves, full, atol=1e-6)
    halves.backward()
    for g, p in zip(grads, model.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-5)
    # detached carry: the same forward losses, but no gradient reaches the first half through the state
    model.zero_grad()
    h2d, _ = model(x[:, 6:], detach_state(s1))
    assert torch.allclose(model.loss(h2d, y[:, 6:]), model.loss(h2, y[:, 6:]), atol=1e-6)


def test_tied_weights_and_awd_layer_sizes():
    model = RNNLanguageModel(V, embedding_size=6, hidden_size=20, num_layers=3, tie_weights=True)
    assert model.layer_sizes == [20, 20, 6]
    assert model.decoder.decoder.weight is model.embedding.weight
    n_untied = sum(p.numel() for p in RNNLanguageModel(V, 6, 20, 3, layer_sizes=[20, 20, 6]).parameters())
    assert sum(p.numel() for p in model.parameters()) == n_untied - V * 6
    with pytest.raises(ValueError, match="tie_weights needs"):
        RNNLanguageModel(V, embedding_size=6, hidden_size=20, layer_sizes=[20, 20], tie_weights=True)
    with pytest.raises(ValueError, match="not supported with output='adaptive'"):
        RNNLanguageModel(V, 6, 6, tie_weights=True, output="adaptive", cutoffs=[10])


def test_weight_drop_one_mask_per_forward_on_loop_cell(monkeypatch):
    torch.manual_seed(0)
    model = RNNLanguageModel(V, embedding_size=8, hidden_size=10, num_layers=2, cell="leaky", weight_drop=0.5)
    calls = []
    original = WeightDrop.forward
    monkeypatch.setattr(WeightDrop, "forward", lambda self, w: calls.append(1) or original(self, w))
    model.train()
    model(_tokens(t=9))
    assert len(calls) == 2  # once per layer, not once per time step
    model.eval()
    first = model(_tokens())[0]
    assert torch.equal(first, model(_tokens())[0])  # eval: no weight noise


def test_dropouts_only_in_training():
    torch.manual_seed(0)
    model = RNNLanguageModel(V, 8, 10, dropout=0.3, embedding_dropout=0.1, weight_drop=0.2)
    x = _tokens()
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])


@pytest.mark.parametrize("output,kwargs", [("adaptive", {"cutoffs": [10, 20]}), ("sampled", {"num_samples": 5}),
                                           ("blackout", {"num_samples": 5})])
def test_output_layers_plug_in(output, kwargs):
    torch.manual_seed(0)
    model = RNNLanguageModel(V, 8, 16, output=output, **kwargs).eval()
    x = _tokens()
    hidden, _ = model(x)
    logp = model.log_probs(hidden)
    assert torch.allclose(model.loss(hidden, x), -logp.gather(-1, x.unsqueeze(-1)).mean(), atol=1e-5)


def test_init_range_and_bad_input():
    model = RNNLanguageModel(V, 8, 10, init_range=0.05)
    assert all(p.abs().max() <= 0.05 for p in model.parameters())
    with pytest.raises(ValueError, match=r"inputs must be \[B, T\]"):
        model(torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="dropout must be in"):
        RNNLanguageModel(V, dropout=1.5)
    with pytest.raises(KeyError):
        RNNLanguageModel(V, cell="no-such-cell")
