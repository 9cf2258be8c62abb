"""Locked dropout, embedding dropout and weight drop (DropConnect through torch.nn.utils.parametrize)."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from recurrentkit.nn import Recurrent
from recurrentkit.nn.dropout import LockedDropout, WeightDrop, embedding_dropout, remove_weight_drop_, weight_drop_


@pytest.mark.parametrize("batch_first", [True, False])
def test_locked_dropout_mask_is_constant_over_time(batch_first):
    torch.manual_seed(0)
    drop = LockedDropout(0.5, batch_first=batch_first).train()
    x = torch.ones(4, 7, 16) if batch_first else torch.ones(7, 4, 16)
    y = drop(x)
    time_dim = 1 if batch_first else 0
    first = y.select(time_dim, 0).unsqueeze(time_dim)
    assert torch.equal(y, first.expand_as(y))
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert (y == 0).any() and (y == 2).any()
    # masks differ between sequences of the batch
    per_seq = first.squeeze(time_dim)
    assert not all(torch.equal(per_seq[0], per_seq[i]) for i in range(1, 4))


def test_locked_dropout_eval_is_identity_and_expectation_kept():
    drop = LockedDropout(0.3)
    x = torch.randn(2, 5, 8)
    assert torch.equal(drop.eval()(x), x)
    drop.train()
    torch.manual_seed(1)
    big = torch.ones(2000, 3, 50)
    assert drop(big).mean().item() == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="p must be"):
        LockedDropout(1.0)


def test_embedding_dropout_drops_whole_words():
    torch.manual_seed(0)
    emb = nn.Embedding(20, 6)
    words = torch.arange(20).repeat(3, 1)  # every word three times
    out = embedding_dropout(emb, words, 0.5, training=True)
    zero_rows = (out == 0).all(-1)
    assert zero_rows.any() and not zero_rows.all()
    # the same word is dropped everywhere it occurs
    assert torch.equal(zero_rows[0], zero_rows[1]) and torch.equal(zero_rows[0], zero_rows[2])
    kept = ~zero_rows[0]
    assert torch.allclose(out[0, kept], emb.weight[kept] * 2)
    assert torch.equal(embedding_dropout(emb, words, 0.5, training=False), emb(words))


def test_weight_drop_changes_weight_only_in_training():
    torch.manual_seed(0)
    rnn = Recurrent("lstm", 4, 8)
    raw = rnn.layers[0][0].weight_hh.detach().clone()
    names = weight_drop_(rnn, 0.5)
    assert names == ["layers.0.0.weight_hh"]
    cell = rnn.layers[0][0]
    assert parametrize.is_parametrized(cell, "weight_hh")
    rnn.train()
    dropped = cell.weight_hh
    assert (dropped == 0).any()
    nonzero = dropped != 0
    assert torch.allclose(dropped[nonzero], raw[nonzero] * 2)
    rnn.eval()
    assert torch.equal(cell.weight_hh, raw)
    remove_weight_drop_(rnn)
    assert not parametrize.is_parametrized(cell, "weight_hh")
    assert torch.equal(cell.weight_hh, raw)


def test_weight_drop_errors():
    with pytest.raises(ValueError, match="no parameter named"):
        weight_drop_(nn.Linear(2, 2), 0.5)
    with pytest.raises(TypeError, match="buffer"):
        weight_drop_(Recurrent("esn", 3, 40), 0.5)


@pytest.mark.parametrize("cell", ["lstm", "gru", "elman"])
def test_weight_drop_keeps_fused_path(cell, monkeypatch):
    torch.manual_seed(0)
    rnn = Recurrent(cell, 3, 6, num_layers=2)
    ref = Recurrent(cell, 3, 6, num_layers=2)
    ref.load_state_dict(rnn.state_dict())
    weight_drop_(rnn, 0.4)

    def no_loop(*args, **kwargs):
        raise AssertionError("the Python time loop ran instead of the fused kernel")

    monkeypatch.setattr(Recurrent, "_run_cell", no_loop)
    x = torch.randn(5, 2, 3)
    rnn.eval()
    ref.eval()
    out, _ = rnn(x)  # both layers run on the fused kernel (no_loop would raise otherwise)
    assert torch.allclose(out, ref(x)[0], atol=1e-6)
    # in training the fused kernel sees the dropped weight: same result as the loop on that weight, and
    # gradients reach the raw parameter
    rnn.train()
    loop = Recurrent(cell, 3, 6, num_layers=2, force_loop=True)
    with parametrize.cached():
        torch.manual_seed(3)
        out = rnn(x)[0]
        dropped = [c.weight_hh.detach().clone() for c in rnn.cells()]
    loop.load_state_dict(ref.state_dict())
    with torch.no_grad():
        for c, w in zip(loop.cells(), dropped):
            c.weight_hh.copy_(w)
    loop.train()
    monkeypatch.undo()
    assert torch.allclose(out, loop(x)[0], atol=1e-5)
    out.sum().backward()
    grad = rnn.layers[0][0].parametrizations.weight_hh.original.grad
    assert grad is not None and grad.abs().sum() > 0
    assert (grad[dropped[0] == 0] == 0).all()  # dropped connections get no gradient


def test_weight_drop_parametrization_is_module():
    wd = WeightDrop(0.5)
    w = torch.ones(10, 10)
    assert torch.equal(wd.eval()(w), w)
    assert not torch.equal(wd.train()(w), w)
