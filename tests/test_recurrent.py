"""``Recurrent``: parity with torch.nn, lengths, state carry, stacking options and input checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import recurrentkit as rk

I, H, B, T = 5, 6, 4, 7  # noqa: E741
LENGTHS = [7, 3, 5, 1]



# --- parity with torch.nn -------------------------------------------------------------------------------------------
REFERENCES = {  # torch.nn module class and kwargs, our cell name and kwargs
    "lstm": (nn.LSTM, {}, "lstm", {}),
    "gru": (nn.GRU, {}, "gru", {}),
    "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}, "elman", {}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}, "elman", {"nonlinearity": "relu"}),
    "lstm_proj": (nn.LSTM, {"proj_size": 3}, "lstm", {"proj_size": 3}),
}


def _pair(kind: str, bidirectional: bool, force_loop: bool, layers: int = 2, batch_first: bool = False):
    ref_cls, ref_kwargs, cell, cell_kwargs = REFERENCES[kind]
    ref = ref_cls(I, H, layers, bidirectional=bidirectional, batch_first=batch_first, **ref_kwargs)
    ours = rk.Recurrent(cell, I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                        force_loop=force_loop, **cell_kwargs)
    with torch.no_grad():
        for layer, cells in enumerate(ours.layers):
            for direction, c in enumerate(cells):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                for name, p in c.named_parameters():
                    p.copy_(getattr(ref, name + suffix))
    return ref, ours


def _reference_run(ref: nn.RNNBase, x, hx, lengths, batch_first=False):
    if lengths is None:
        return ref(x, hx)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    out, final = ref(packed, hx)
    return pad_packed_sequence(out, batch_first=batch_first, total_length=T)[0], final


def _our_state(ours: rk.Recurrent, hx, lstm: bool):
    if lstm:
        return [c.state_type(h, cc) for c, h, cc in zip(ours.cells(), hx[0].unbind(0), hx[1].unbind(0))]
    return [c.state_type(h) for c, h in zip(ours.cells(), hx.unbind(0))]


@pytest.mark.parametrize("force_loop", [False, True], ids=["fused", "loop"])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", list(REFERENCES))
def test_parity_with_torch_nn(kind, bidirectional, lengths, force_loop):
    torch.manual_seed(0)
    ref, ours = _pair(kind, bidirectional, force_loop)
    lstm = isinstance(ref, nn.LSTM)
    d = 2 if bidirectional else 1
    out_size = ref.proj_size or H if lstm else H
    x = torch.randn(T, B, I)
    h0 = torch.randn(2 * d, B, out_size)
    hx = (h0, torch.randn(2 * d, B, H)) if lstm else h0
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref_out, ref_final = _reference_run(ref, x_ref, hx, lengths)
    out, final = ours(x_ours, _our_state(ours, hx, lstm), lengths=lengths)
    assert out.shape == ref_out.shape == (T, B, d * out_size) and ours.output_size == d * out_size
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    ref_final = ref_final if lstm else (ref_final,)
    for field, ref_field in enumerate(ref_final):
        torch.testing.assert_close(torch.stack([s[field] for s in final]), ref_field, atol=1e-5, rtol=1e-5)
    if lengths is not None:
        pad = torch.arange(T).unsqueeze(1) >= torch.tensor(lengths)
        assert out[pad].abs().max() == 0  # outputs are zero at padded steps

    weight = torch.randn_like(ref_out)
    ref_loss = (ref_out * weight).sum() + sum(f.pow(2).sum() for f in ref_final)
    loss = (out * weight).sum() + sum(s.pow(2).sum() for st in final for s in st)
    ref_loss.backward()
    loss.backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    for layer, cells in enumerate(ours.layers):
        for direction, c in enumerate(cells):
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            for name, p in c.named_parameters():
                torch.testing.assert_close(p.grad, getattr(ref, name + suffix).grad, atol=1e-5, rtol=1e-5,
                                           msg=lambda m, n=name + suffix: f"gradient of {n}: {m}")


@pytest.mark.parametrize("force_loop", [False, True], ids=["fused", "loop"])
def test_parity_batch_first_zero_state(force_loop):
    ref, ours = _pair("lstm", True, force_loop, batch_first=True)
    x = torch.randn(B, T, I)
    ref_out, (h, c) = _reference_run(ref, x, None, LENGTHS, batch_first=True)
    out, final = ours(x, lengths=LENGTHS)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack([s.h for s in final]), h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.stack([s.c for s in final]), c, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_parity_dropout_in_training(kind):
    ref, ours = _pair(kind, True, False)
    ref.dropout = ours.dropout = 0.4
    x = torch.randn(T, B, I)
    torch.manual_seed(9)
    ref_out = _reference_run(ref, x, None, LENGTHS)[0]
    torch.manual_seed(9)
    out = ours(x, lengths=LENGTHS)[0]
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)  # the same kernel draws the same masks
    assert not torch.allclose(out, ours.eval()(x, lengths=LENGTHS)[0])


def test_fast_path_is_used_only_when_it_computes_the_same_thing():
    from recurrentkit.nn.fused import fused_mode_of

    assert fused_mode_of(rk.Recurrent("lstm", I, H).layers[0]) == "LSTM"
    assert fused_mode_of(rk.Recurrent("lstm", I, H, peepholes=True).layers[0]) is None
    assert fused_mode_of(rk.Recurrent("elman", I, H, nonlinearity="relu").layers[0]) == "RNN_RELU"
    assert fused_mode_of(rk.Recurrent("elman", I, H, nonlinearity="sigmoid").layers[0]) is None
    assert fused_mode_of(rk.Recurrent("gru", I, H).layers[0]) == "GRU"
    mixed = rk.Recurrent("lstm", I, H, bidirectional=True)
    mixed.layers[0][1] = rk.create_cell("lstm", I, H, proj_size=2)  # directions that can't share one kernel call
    assert fused_mode_of(mixed.layers[0]) is None



# state carry and padded batches of every registered cell: test_cells.py::test_check_cell (recurrentkit.testing)


def test_full_lengths_equal_no_lengths():
    layer = rk.Recurrent("leaky", I, H, bidirectional=True)
    x = torch.randn(T, B, I)
    torch.testing.assert_close(layer(x, lengths=[T] * B)[0], layer(x)[0])


# --- stacking options -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", rk.list_cells())
def test_learned_initial_state_gets_gradients(name):
    layer = rk.Recurrent(name, I, H, num_layers=2, bidirectional=True, learn_initial_state=True)
    init_params = list(layer.initial_states.parameters())
    assert len(init_params) == 4 * len(layer.cells()[0].state_size)
    x = torch.randn(T, B, I)
    before = layer(x)[0].detach()
    layer(x)[0].pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in init_params)
    with torch.no_grad():
        init_params[0].add_(1.0)
    assert not torch.allclose(layer(x)[0], before)


@pytest.mark.parametrize("name", ["elman", "jordan"])
def test_residual_adds_each_layer_input_from_the_second_layer_on(name):
    layer = rk.Recurrent(name, H, H, num_layers=3, residual=True)
    x = torch.randn(T, B, H)
    out, _ = layer(x)
    expected = x
    for index, (cell,) in enumerate(layer.layers):
        y, _ = cell.forward_sequence(expected, cell.initial_state(B))
        expected = y + expected if index > 0 else y
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="residual"):
        rk.Recurrent(name, H, H, num_layers=2, residual=True, layer_kwargs=[{}, {"hidden_size": 3}])


@pytest.mark.parametrize("name", ["lstm", "leaky"])
def test_dropout_only_between_layers_and_only_in_training(name):
    x = torch.randn(T, B, I)
    single = rk.Recurrent(name, I, H, dropout=0.5)
    torch.testing.assert_close(single(x)[0], single.eval()(x)[0])  # one layer: nothing to drop
    layer = rk.Recurrent(name, I, H, num_layers=2, dropout=0.5)
    train_out, train_state = layer(x)
    eval_out, eval_state = layer.eval()(x)
    torch.testing.assert_close(layer(x)[0], eval_out)  # eval is deterministic
    assert not torch.allclose(train_out, eval_out)
    for a, b in zip(train_state[0], eval_state[0]):  # the first layer never sees dropout
        torch.testing.assert_close(a, b)


def test_per_layer_kwargs_and_cells():
    layer = rk.Recurrent("lstm", I, H, num_layers=3, peepholes=True,
                         layer_kwargs=[{}, {"peepholes": False, "hidden_size": 5}, {"proj_size": 2}])
    c0, c1, c2 = layer.cells()
    assert c0.peepholes and not c1.peepholes and c2.peepholes and c2.proj_size == 2
    assert (c1.hidden_size, c1.input_size, c2.input_size) == (5, H, 5)
    out, state = layer(torch.randn(T, B, I))
    assert out.shape == (T, B, 2) and layer.output_size == 2
    mixed = rk.Recurrent(["gru", "jordan"], I, H, num_layers=2, bidirectional=True)
    assert [type(c).__name__ for c in mixed.cells()] == ["GRUCell", "GRUCell", "JordanCell", "JordanCell"]
    assert mixed(torch.randn(T, B, I))[0].shape == (T, B, 2 * H)
    with pytest.raises(ValueError, match="layer_kwargs"):
        rk.Recurrent("lstm", I, H, num_layers=2, layer_kwargs=[{}])


def test_batch_first_equals_time_first():
    torch.manual_seed(5)
    tf = rk.Recurrent("simplified_gru", I, H, num_layers=2, bidirectional=True)
    bf = rk.Recurrent("simplified_gru", I, H, num_layers=2, bidirectional=True, batch_first=True)
    bf.load_state_dict(tf.state_dict())
    x = torch.randn(T, B, I)
    torch.testing.assert_close(bf(x.transpose(0, 1), lengths=LENGTHS)[0].transpose(0, 1), tf(x, lengths=LENGTHS)[0])


def test_a_cell_class_or_factory_works_as_spec():
    from recurrentkit.cells import LeakyCell

    layer = rk.Recurrent(LeakyCell, I, H, num_layers=2, alpha=0.1)
    assert all(isinstance(c, LeakyCell) for c in layer.cells())
    with pytest.raises(TypeError, match="not a RecurrentCell"):
        rk.Recurrent(lambda i, h: nn.Linear(i, h), I, H)
    with pytest.raises(TypeError):
        rk.Recurrent(3, I, H)


def test_lengths_on_any_device_and_as_list():
    layer = rk.Recurrent("gru", I, H)
    x = torch.randn(T, B, I)
    expected = layer(x, lengths=torch.tensor(LENGTHS))[0]
    torch.testing.assert_close(layer(x, lengths=LENGTHS)[0], expected)
    torch.testing.assert_close(layer(x, lengths=tuple(LENGTHS))[0], expected)
    torch.testing.assert_close(layer(x, lengths=torch.tensor(LENGTHS, dtype=torch.int32))[0], expected)
    if torch.cuda.is_available():  # lengths on another device than the data
        torch.testing.assert_close(layer(x, lengths=torch.tensor(LENGTHS, device="cuda"))[0], expected)


# --- errors -----------------------------------------------------------------------------------------------------------
def test_clear_errors_on_bad_input():
    layer = rk.Recurrent("lstm", I, H, num_layers=2)
    x = torch.randn(T, B, I)
    with pytest.raises(ValueError, match="input_size=5"):
        layer(torch.randn(T, B, I + 1))
    with pytest.raises(ValueError, match="3-D"):
        layer(torch.randn(T, I))
    with pytest.raises(ValueError, match="lengths must have shape"):
        layer(x, lengths=[3, 4])
    with pytest.raises(ValueError, match="lengths must be in"):
        layer(x, lengths=[T + 1, 1, 1, 1])
    with pytest.raises(ValueError, match="lengths must be in"):
        layer(x, lengths=[0, 1, 1, 1])
    with pytest.raises(TypeError, match="integers"):
        layer(x, lengths=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="state must hold 2"):
        layer(x, state=layer.initial_state(B)[:1])
    with pytest.raises(ValueError, match=r"state\[0\].h has shape \(5, 6\), expected \(4, 6\)"):
        layer(x, state=layer.initial_state(B + 1))
    with pytest.raises(TypeError, match="LSTMState"):
        layer(x, state=[(torch.zeros(B, H), torch.zeros(B, H))] * 2)
    for kwargs in ({"num_layers": 0}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            rk.Recurrent("lstm", I, H, **kwargs)
    with pytest.raises(KeyError, match="lstm"):
        rk.Recurrent("lstn", I, H)


@pytest.mark.slow
def test_compiled_loop_matches_eager():
    torch.manual_seed(6)
    eager = rk.Recurrent("leaky", I, H, num_layers=2)
    compiled = rk.Recurrent("leaky", I, H, num_layers=2, compile=True)
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(T, B, I, requires_grad=True)
    torch.testing.assert_close(compiled(x)[0], eager(x)[0])
