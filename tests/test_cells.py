"""Every registered cell through check_cell; golden values, the echo-state reservoir, Jordan forcing."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import recurrentkit as rk
from recurrentkit.cells import ESNCell, JordanCell, LeakyCell, LSTMCell, SimplifiedGRUCell
from recurrentkit.cells.init import spectral_radius
from recurrentkit.cells.kernels import run_path
from recurrentkit.testing import check_cell

I, H, B, T = 3, 4, 2, 5  # noqa: E741

# at check_cell's sizes (2 inputs, 3 units) the reservoir's 10%-dense input matrix would be all zeros
TINY = {"esn": {"input_density": 1.0}}
# (registered name, kwargs): every registered cell with its defaults, plus the options that change the equations
VARIANTS = [(name, TINY.get(name, {})) for name in rk.list_cells()] + [
    ("lstm", {"peepholes": True}),
    ("lstm", {"layer_norm": True}),
    ("lstm", {"proj_size": 2}),
    ("lstm", {"peepholes": True, "layer_norm": True, "proj_size": 2}),
    ("leaky", {"leak": "learned"}),
    ("leaky", {"leak": "multiscale", "timescales": (1.0, 10.0)}),
    ("elman", {"nonlinearity": "relu", "init": "identity"}),
    ("elman", {"nonlinearity": "sigmoid"}),
    ("jordan", {"output_size": 2, "output_activation": "softmax"}),
    ("jordan", {"output_activation": "identity", "nonlinearity": "sigmoid"}),
    ("jordan", {"output_activation": "sigmoid", "nonlinearity": "relu", "bias": False}),
    ("leaky", {"bias": False}),
    ("min_gru", {"scan": "log"}),
    ("min_lstm", {"scan": "log", "bias": False}),
    ("min_gru", {"chunk_size": 2}),
]
VARIANT_IDS = [name + "".join(f"-{k}={v}" for k, v in kwargs.items()) for name, kwargs in VARIANTS]



@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=VARIANT_IDS)
def test_check_cell(name, kwargs):
    """The generic checks (recurrentkit.testing.check_cell) on every registered cell and its equation-changing options:
    shapes, every path against the step loop (padded too), gradients and gradcheck, state carry, padded batches."""
    ran = check_cell(name, 2, 3, batch=3, steps=4, **kwargs)
    assert ran == ["valid class", "shapes", "paths", "gradients", "state carry", "padded batch"]
    assert rk.get_cell_class(name).trainable_recurrence == bool(list(rk.create_cell(name, 2, 3).parameters()))


# --- golden values with constant initialisers, the expected numbers computed by hand from the equations ----------
XS = [0.5, -1.0, 2.0]  # every feature of x_t equals XS[t]


def _constant_input(size: int, batch: int = 2) -> torch.Tensor:
    return torch.tensor(XS).view(-1, 1, 1).expand(len(XS), batch, size).contiguous()


def test_golden_jordan():
    cell = JordanCell(2, 3, output_size=2, nonlinearity="tanh", output_activation="tanh")
    for p, value in [(cell.weight_ih, 0.1), (cell.weight_hh, -0.2), (cell.bias_ih, 0.05), (cell.weight_ho, 0.3),
                     (cell.bias_ho, -0.1)]:
        nn.init.constant_(p, value)
    y, expected = 0.0, []
    for x in XS:  # h = tanh(W x + b + U y_prev), y = tanh(V h + c), every unit alike
        h = math.tanh(2 * 0.1 * x + 0.05 + 2 * -0.2 * y)
        y = math.tanh(3 * 0.3 * h - 0.1)
        expected.append(y)
    out, final = cell.forward_sequence(_constant_input(2), cell.initial_state(2))
    torch.testing.assert_close(out, torch.tensor(expected).view(-1, 1, 1).expand(3, 2, 2))
    torch.testing.assert_close(final.y, out[-1])


@pytest.mark.parametrize("leak", ["fixed", "learned"])
def test_golden_leaky(leak):
    a = 0.25
    cell = LeakyCell(2, 3, alpha=a, leak=leak)
    for p, value in [(cell.weight_ih, 0.2), (cell.weight_hh, -0.1), (cell.bias_ih, 0.1), (cell.bias_hh, -0.3)]:
        nn.init.constant_(p, value)
    h, expected = 0.0, []
    for x in XS:  # h = a h + (1 - a) tanh(W x + U h + b)
        h = a * h + (1 - a) * math.tanh(2 * 0.2 * x + 3 * -0.1 * h + 0.1 - 0.3)
        expected.append(h)
    out, final = cell.forward_sequence(_constant_input(2), cell.initial_state(2))
    torch.testing.assert_close(out, torch.tensor(expected).view(-1, 1, 1).expand(3, 2, 3))
    torch.testing.assert_close(final.h, out[-1])


def test_golden_simplified_gru_gate_order():
    cell = SimplifiedGRUCell(2, 3)
    with torch.no_grad():  # W = [W_u; W_c], U = [U_u; U_c], b = [b_u; b_c]: different constants per block
        cell.weight_ih[:3].fill_(0.3), cell.weight_ih[3:].fill_(-0.2)
        cell.weight_hh[:3].fill_(0.1), cell.weight_hh[3:].fill_(0.4)
        cell.bias[:3].fill_(-0.5), cell.bias[3:].fill_(0.2)
    c, expected = 0.0, []
    for x in XS:
        gate = 1 / (1 + math.exp(-(2 * 0.3 * x + 3 * 0.1 * c - 0.5)))
        candidate = math.tanh(2 * -0.2 * x + 3 * 0.4 * c + 0.2)
        c = gate * candidate + (1 - gate) * c
        expected.append(c)
    out, final = cell.forward_sequence(_constant_input(2), cell.initial_state(2))
    torch.testing.assert_close(out, torch.tensor(expected).view(-1, 1, 1).expand(3, 2, 3))


@pytest.mark.parametrize("peepholes", [False, True])
def test_layer_norm_lstm_follows_its_equations(peepholes):
    """Ba et al. (2016): gates = LN(W x) γ_ih + β_ih + LN(U h) γ_hh + β_hh + b, c' = σ(f) c + σ(i) tanh(g),
    h' = σ(o) tanh(LN(c') γ_c + β_c), written out per gate with random γ, β; every path of the layer agrees."""
    torch.manual_seed(3)
    cell = LSTMCell(I, H, layer_norm=True, peepholes=peepholes).double()
    with torch.no_grad():
        for p in cell.parameters():
            p.normal_()

    def norm(z):
        return (z - z.mean(-1, keepdim=True)) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + 1e-5)

    x = torch.randn(T, B, I, dtype=torch.double)
    h, c = torch.zeros(B, H, dtype=torch.double), torch.zeros(B, H, dtype=torch.double)
    expected = []
    for x_t in x:
        wx, uh = (x_t @ cell.weight_ih.t()).view(B, 4, H), (h @ cell.weight_hh.t()).view(B, 4, H)
        z = (norm(wx) * cell.ln_ih_weight + cell.ln_ih_bias + norm(uh) * cell.ln_hh_weight + cell.ln_hh_bias
             + (cell.bias_ih + cell.bias_hh).view(4, H))
        i, f, g, o = z.unbind(1)
        if peepholes:
            i, f = i + cell.peephole_i * c, f + cell.peephole_f * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if peepholes:
            o = o + cell.peephole_o * c
        h = torch.sigmoid(o) * torch.tanh(norm(c) * cell.ln_c.weight + cell.ln_c.bias)
        expected.append(h)
    out, final = cell.forward_sequence(x, cell.initial_state(B, dtype=torch.double))
    torch.testing.assert_close(out, torch.stack(expected))
    torch.testing.assert_close(final.c, c)
    hoisted, _ = run_path("hoisted", cell, x.requires_grad_(), cell.initial_state(B, dtype=torch.double))
    torch.testing.assert_close(hoisted, torch.stack(expected))  # the training path (HoistedLoop)


@pytest.mark.parametrize("with_grad", [False, True])
def test_golden_esn(with_grad):
    lam = 0.3
    cell = ESNCell(2, 3, leak_rate=lam)
    for buf, value in [(cell.weight_ih, 0.5), (cell.weight_hh, 0.1), (cell.bias, -0.2)]:
        buf.fill_(value)
    h, expected = 0.0, []
    for x in XS:  # h = (1 - λ) h + λ tanh(W_in x + W h + b)
        h = (1 - lam) * h + lam * math.tanh(2 * 0.5 * x + 3 * 0.1 * h - 0.2)
        expected.append(h)
    x = _constant_input(2).requires_grad_(with_grad)  # with_grad: the autograd path, else the no-grad fast path
    out, final = cell.forward_sequence(x, cell.initial_state(2))
    torch.testing.assert_close(out, torch.tensor(expected).view(-1, 1, 1).expand(3, 2, 3))
    torch.testing.assert_close(final.h, out[-1])


# --- echo-state reservoir ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("size", "radius", "density"), [(60, 0.9, 0.1), (100, 1.25, 0.05), (30, 0.5, 1.0)])
def test_esn_spectral_radius_within_one_percent(size, radius, density):
    cell = ESNCell(3, size, spectral_radius=radius, density=density, seed=3)
    assert abs(spectral_radius(cell.weight_hh) - radius) <= 0.01 * radius
    nonzero = (cell.weight_hh != 0).float().mean().item()
    assert abs(nonzero - density) <= 0.02


def test_esn_seed_determines_the_reservoir():
    a, b, c = ESNCell(3, 50, seed=7), ESNCell(3, 50, seed=7), ESNCell(3, 50, seed=8)
    for name in ("weight_ih", "weight_hh", "bias"):
        assert torch.equal(getattr(a, name), getattr(b, name))
        assert not torch.equal(getattr(a, name), getattr(c, name))
    assert list(a.parameters()) == [] and set(dict(a.named_buffers())) == {"weight_ih", "weight_hh", "bias"}


def test_esn_rejects_bad_settings():
    for kwargs in ({"leak_rate": 0.0}, {"spectral_radius": -1.0}, {"density": 0.0}, {"input_density": 2.0}):
        with pytest.raises(ValueError):
            ESNCell(3, 10, **kwargs)


# --- options and errors ---------------------------------------------------------------------------------------------
def test_lstm_options_and_errors():
    cell = LSTMCell(3, 6, proj_size=2, peepholes=True)
    assert cell.state_size == (2, 6) and cell.output_size == 2 and cell.fused_mode is None
    assert LSTMCell(3, 6, proj_size=2).fused_mode == "LSTM"
    assert torch.all(LSTMCell(3, 6).bias_ih[6:12] == 1.0)  # forget-gate bias
    with pytest.raises(ValueError, match="proj_size"):
        LSTMCell(3, 6, proj_size=6)
    with pytest.raises(ValueError, match="positive"):
        LSTMCell(0, 6)


def test_leaky_modes():
    assert torch.allclose(LeakyCell(2, 5, alpha=0.3).retention(), torch.full((5,), 0.3))
    learned = LeakyCell(2, 5, alpha=0.3, leak="learned")
    assert torch.allclose(learned.retention(), torch.full((5,), 0.3)) and learned.alpha_logit.requires_grad
    taus = 1 / (1 - LeakyCell(2, 5, leak="multiscale", timescales=(2.0, 32.0)).retention())
    torch.testing.assert_close(taus, torch.tensor([2.0, 4.0, 8.0, 16.0, 32.0]))
    for kwargs in ({"alpha": 1.0}, {"leak": "sometimes"}, {"leak": "multiscale", "timescales": (0.5, 2.0)}):
        with pytest.raises(ValueError):
            LeakyCell(2, 5, **kwargs)


def test_leaky_with_zero_retention_is_elman():
    leaky, elman = LeakyCell(3, 4, alpha=0.0), rk.create_cell("elman", 3, 4)
    elman.load_state_dict({k: v for k, v in leaky.state_dict().items() if k != "alpha"})
    x = torch.randn(T, B, 3)
    torch.testing.assert_close(leaky.forward_sequence(x, leaky.initial_state(B))[0],
                               elman.forward_sequence(x, elman.initial_state(B))[0])


def test_bad_cell_options_name_the_option():
    with pytest.raises(ValueError, match="nonlinearity"):
        rk.create_cell("elman", 3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="output_activation"):
        rk.create_cell("jordan", 3, 4, output_activation="relu6")
    with pytest.raises(ValueError, match="recurrent init"):
        rk.create_cell("gru", 3, 4, init="zeros")


# --- Jordan teacher forcing -----------------------------------------------------------------------------------------
def test_jordan_teacher_forcing_matches_the_loop_on_its_own_outputs():
    torch.manual_seed(4)
    cell = JordanCell(3, 5, output_size=2)
    x = torch.randn(6, B, 3)
    start = cell.state_type(torch.randn(B, 2))
    loop_out, loop_final = cell.forward_sequence(x, start)
    forced, forced_final = cell.teacher_forced(x, loop_out.detach(), start)
    torch.testing.assert_close(forced, loop_out)
    torch.testing.assert_close(forced_final.y, loop_final.y)
    # the check can fail: step t must see targets[t-1] and nothing later
    targets = loop_out.detach().clone()
    targets[2] += 1.0
    moved, _ = cell.teacher_forced(x, targets, start)
    torch.testing.assert_close(moved[:3], loop_out[:3])
    assert not torch.allclose(moved[3], loop_out[3])
    torch.testing.assert_close(moved[4:], loop_out[4:])
    assert not torch.allclose(cell.teacher_forced(x, loop_out.detach(), None)[0][0], loop_out[0])  # uses state
    with pytest.raises(ValueError, match="targets"):
        cell.teacher_forced(x, torch.zeros(6, B, 5))


# --- detach_state ---------------------------------------------------------------------------------------------------
def test_detach_state():
    layer = rk.Recurrent("lstm", 3, 4, num_layers=2)
    _, state = layer(torch.randn(T, B, 3, requires_grad=True))
    assert all(s.grad_fn is not None for st in state for s in st)
    detached = rk.detach_state(state)
    assert isinstance(detached, list) and all(type(d) is type(s) for d, s in zip(detached, state))
    for d, s in zip(detached, state):
        for dt, st in zip(d, s):
            assert dt.grad_fn is None and not dt.requires_grad and torch.equal(dt, st)
    assert rk.detach_state(None) is None
    with pytest.raises(TypeError, match="cannot detach"):
        rk.detach_state({"h": torch.zeros(1)})
