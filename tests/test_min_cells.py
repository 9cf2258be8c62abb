"""minGRU and minLSTM (Feng et al. 2024) and LinearRecurrentCell: equations, scan == step, layers, tasks, user cells."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import recurrentkit as rk
from recurrentkit.cells.linear import LinearRecurrentCell, LinearState
from recurrentkit.cells.min_gru import g, log_g

NAMES = ["min_gru", "min_lstm"]


def _step_loop(cell, x, state):
    """The sequential mode: one ``step`` per time step on the projection of that step alone (as in generation)."""
    outputs = []
    for x_t in x.unbind(0):
        y_t, state = cell.step(cell.project_input(x_t.unsqueeze(0)).squeeze(0), state)
        outputs.append(y_t)
    return torch.stack(outputs), state


@pytest.mark.parametrize("name", NAMES)
def test_parallel_equals_sequential_float32_4096_steps_with_state_carry(name):
    torch.manual_seed(0)
    cell = rk.create_cell(name, 4, 16)
    x = torch.randn(4096, 3, 4)
    h0 = cell.state_type(torch.randn(3, 16))
    with torch.no_grad():
        sequential, last = _step_loop(cell, x, h0)
    parallel, final = cell.forward_sequence(x, h0)  # with grad: the training kernel
    first, carried = cell.forward_sequence(x[:1500], h0)
    second, final2 = cell.forward_sequence(x[1500:], carried)  # state carried across calls
    scale = sequential.abs().max()
    for ours in (parallel, torch.cat([first, second])):
        assert (ours.detach() - sequential).abs().max() <= 1e-5 * scale
    for state in (final, final2):
        assert (state.h.detach() - last.h).abs().max() <= 1e-5 * scale
    assert parallel.requires_grad


@pytest.mark.parametrize("name", NAMES)
def test_log_space_scan_agrees_with_the_linear_scan(name):
    torch.manual_seed(1)
    linear = rk.create_cell(name, 4, 8)
    log = rk.create_cell(name, 4, 8, scan="log")
    log.load_state_dict(linear.state_dict())
    x, h0 = torch.randn(300, 2, 4), linear.state_type(torch.randn(2, 8))
    out, final = linear.forward_sequence(x, h0)
    out_log, final_log = log.forward_sequence(x, h0)
    torch.testing.assert_close(out_log, out, atol=1e-5 * out.abs().max().item(), rtol=1e-4)
    grads = torch.autograd.grad(out.sum(), list(linear.parameters()))
    grads_log = torch.autograd.grad(out_log.sum(), list(log.parameters()))
    for a, b in zip(grads_log, grads):
        torch.testing.assert_close(a, b, atol=1e-4 * b.abs().max().item(), rtol=1e-3)


def test_g_is_positive_and_log_g_is_its_log():
    x = torch.linspace(-30, 30, 601, dtype=torch.double)
    torch.testing.assert_close(g(x), torch.where(x >= 0, x + 0.5, torch.sigmoid(x)))
    assert (g(x) > 0).all()
    torch.testing.assert_close(log_g(x), torch.log(g(x)))


def test_min_gru_equations_from_its_weights():
    torch.manual_seed(2)
    cell = rk.create_cell("min_gru", 3, 5)
    x = torch.randn(7, 2, 3)
    w_z, w_h = cell.weight_ih.chunk(2)
    b_z, b_h = cell.bias_ih.chunk(2)
    h, expected = torch.zeros(2, 5), []
    for x_t in x:
        z = torch.sigmoid(x_t @ w_z.T + b_z)
        h = (1 - z) * h + z * g(x_t @ w_h.T + b_h)
        expected.append(h)
    out, final = cell.forward_sequence(x, cell.initial_state(2))
    torch.testing.assert_close(out, torch.stack(expected))
    torch.testing.assert_close(final.h, h)


def test_min_lstm_normalised_gates_from_its_weights():
    torch.manual_seed(3)
    cell = rk.create_cell("min_lstm", 3, 5, bias=False)
    assert cell.bias_ih is None and cell.weight_ih.shape == (15, 3)
    x, h0 = torch.randn(6, 2, 3), torch.randn(2, 5)
    w_f, w_i, w_h = cell.weight_ih.chunk(3)
    h, expected = h0, []
    for x_t in x:
        f, i = torch.sigmoid(x_t @ w_f.T), torch.sigmoid(x_t @ w_i.T)
        h = f / (f + i) * h + i / (f + i) * g(x_t @ w_h.T)
        expected.append(h)
    out, final = cell.forward_sequence(x, cell.state_type(h0))
    torch.testing.assert_close(out, torch.stack(expected))
    a, b = cell.coefficients(cell.project_input(x))
    f, i, _ = cell.project_input(x).chunk(3, dim=-1)
    torch.testing.assert_close(a + torch.sigmoid(i) / (torch.sigmoid(f) + torch.sigmoid(i)), torch.ones_like(a))
    assert not torch.isnan(cell.coefficients(torch.full((1, 15), -200.0))[0]).any()  # f + i underflow is fine


def _no_step(*args):
    raise AssertionError("the step loop ran: the layer should have taken the scan kernel")


@pytest.mark.parametrize("name", NAMES)
def test_layer_lengths_bidirectional_stacking_and_dropout(name, monkeypatch):
    torch.manual_seed(4)
    layer = rk.Recurrent(name, 3, 6, num_layers=2, bidirectional=True, dropout=0.3).eval()
    x, lengths = torch.randn(9, 3, 3), torch.tensor([9, 4, 1])
    with monkeypatch.context() as patch, torch.no_grad():  # the reference: the step loop on the padded batch
        patch.setattr(type(layer.cells()[0]), "kernel", None)
        looped, looped_final = layer(x, lengths=lengths)
    for cell in layer.cells():  # from here on the step loop must not run: padded, reversed, stacked all scan
        monkeypatch.setattr(cell, "step", _no_step)
    out, final = layer(x, lengths=lengths)
    assert out.shape == (9, 3, 12) and len(final) == 4 and out.requires_grad
    torch.testing.assert_close(out, looped, atol=1e-5, rtol=1e-5)
    for ours, ref in zip(final, looped_final):
        torch.testing.assert_close(ours.h, ref.h, atol=1e-5, rtol=1e-5)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_final = layer(x[:n, b:b + 1])
        torch.testing.assert_close(out[:n, b], alone[:, 0], atol=1e-5, rtol=1e-5)
        assert (out[n:, b] == 0).all()
        for ours, ref in zip(final, alone_final):
            torch.testing.assert_close(ours.h[b:b + 1], ref.h, atol=1e-5, rtol=1e-5)
    layer.train()
    first = layer(x, lengths=lengths)[0]
    assert not torch.allclose(first, layer(x, lengths=lengths)[0])  # dropout between the layers, fresh masks
    first.sum().backward()
    assert all(p.grad is not None for p in layer.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_language_model_classifier_and_tagger_take_the_cell_by_name(name):
    torch.manual_seed(5)
    lm = rk.RNNLanguageModel(20, embedding_size=8, hidden_size=8, num_layers=2, cell=name, dropout=0.1)
    tokens = torch.randint(0, 20, (2, 11))
    hidden, state = lm(tokens[:, :-1])
    loss = lm.loss(hidden, tokens[:, 1:])
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in lm.parameters())
    classifier = rk.RecurrentClassifier(20, 3, cell=name, embedding_size=8, hidden_size=6, bidirectional=True).eval()
    lengths = torch.tensor([7, 3])
    batched = classifier(torch.randint(1, 20, (2, 7)), lengths)
    assert batched.shape == (2, 3) and torch.isfinite(batched).all()
    from recurrentkit.models.tagger import RecurrentTagger

    tagger = RecurrentTagger(20, 4, cell=name, embedding_size=8, hidden_size=6).eval()
    tokens = torch.randint(1, 20, (2, 7))
    tokens[1, 3:] = 0
    scores = tagger(tokens, lengths)
    assert scores.shape == (2, 7, 4) and torch.isfinite(scores).all()
    torch.testing.assert_close(scores[1, :3], tagger(tokens[1:, :3], torch.tensor([3]))[0], atol=1e-5, rtol=1e-4)


class EMACell(LinearRecurrentCell):
    """A user's own cell: h_t = λ h_{t-1} + (1 - λ) W x_t, one learned decay λ = σ(θ) per unit."""

    def __init__(self, input_size, hidden_size, scan="linear"):
        super().__init__(input_size, hidden_size, scan=scan)
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size) / input_size ** 0.5)
        self.decay_logit = nn.Parameter(torch.linspace(-2, 2, hidden_size))

    def project_input(self, x):
        return F.linear(x, self.weight_ih)

    def coefficients(self, u):
        decay = torch.sigmoid(self.decay_logit).expand_as(u)
        return decay, (1 - decay) * u


def test_a_users_linear_cell_gets_the_scan_step_and_layer_for_free():
    rk.register_cell("test_ema")(EMACell)
    try:
        torch.manual_seed(6)
        layer = rk.Recurrent("test_ema", 3, 4, num_layers=2, bidirectional=True)
        cell = layer.cells()[0]
        x = torch.randn(12, 2, 3)
        out, final = cell.forward_sequence(x, cell.initial_state(2))
        with torch.no_grad():
            ref, ref_final = _step_loop(cell, x, cell.initial_state(2))
        torch.testing.assert_close(out, ref)
        out, _ = layer(x, lengths=torch.tensor([12, 5]))
        out.pow(2).sum().backward()
        assert cell.decay_logit.grad is not None and cell.decay_logit.grad.abs().sum() > 0
        assert isinstance(final, cell.state_type) and cell.linear_recurrence
    finally:
        rk.unregister_cell("test_ema")


def test_bad_options_raise():
    with pytest.raises(ValueError, match="scan must be one of"):
        rk.create_cell("min_gru", 2, 3, scan="cumprod")
    with pytest.raises(ValueError, match="chunk_size"):
        rk.create_cell("min_lstm", 2, 3, chunk_size=0)
    with pytest.raises(NotImplementedError, match="coefficients"):
        LinearRecurrentCell(2, 3).coefficients(torch.zeros(1, 3))


@pytest.mark.parametrize("name", NAMES)
def test_hand_written_coefficient_backward_equals_autograd(name, monkeypatch):
    torch.manual_seed(7)
    cell = rk.create_cell(name, 3, 4).double()
    x = torch.randn(11, 2, 3, dtype=torch.double) * 3  # pre-activations on both sides of g's kink
    h0 = torch.randn(2, 4, dtype=torch.double, requires_grad=True)
    mask = torch.arange(11).unsqueeze(1) < torch.tensor([11, 6])
    layer_input = x.requires_grad_()

    def run(x, h0):
        out, final = rk.cells.kernels.run_path("kernel", cell, x, cell.state_type(h0), mask)
        return out, final.h

    assert torch.autograd.gradcheck(run, (layer_input, h0))
    grad = torch.randn(11, 2, 4, dtype=torch.double)
    inputs = (layer_input, h0, *cell.parameters())
    ours = torch.autograd.grad(run(layer_input, h0)[0], inputs, grad)
    monkeypatch.setattr(cell, "coefficients_backward", None)  # the generic path: autograd through coefficients()
    generic = torch.autograd.grad(run(layer_input, h0)[0], inputs, grad)
    for a, b in zip(ours, generic):
        torch.testing.assert_close(a, b)


@pytest.mark.skipif(not rk.cells.min_kernels.available(), reason="Numba is not installed (recurrentkit[fast])")
@pytest.mark.parametrize("name", NAMES)
def test_compiled_pass_equals_the_generic_scan(name, monkeypatch):
    from recurrentkit.cells import linear, min_kernels

    torch.manual_seed(8)
    layer = rk.Recurrent(name, 5, 24, num_layers=2, bidirectional=True)
    x = (torch.randn(40, 4, 5) * 3).requires_grad_()  # gate and candidate logits on both sides of g's kink
    lengths = torch.tensor([40, 17, 1, 39])
    h0 = [layer.cells()[0].state_type(torch.randn(4, 24, requires_grad=True)) for _ in range(4)]
    upstream = torch.randn(40, 4, 48)

    def run(autocast=False):
        with torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            out, final = layer(x, h0, lengths=lengths)
        inputs = (x, *(s.h for s in h0), *layer.parameters())
        loss = (out.float() * upstream).sum() + sum((s.h.float() ** 2).sum() for s in final)
        return [out.detach().float(), *(s.h.detach() for s in final), *torch.autograd.grad(loss, inputs)]

    def no_generic_scan(*args, **kwargs):
        raise AssertionError(f"the generic scan ran: {name} should have taken the compiled pass")

    with monkeypatch.context() as patch:
        patch.setattr(linear, "scan_coefficients", no_generic_scan)
        compiled, compiled_bf16 = run(), run(autocast=True)
    monkeypatch.setattr(min_kernels, "applies", lambda u, h0: False)
    generic = run()
    # outputs, final states, then dL/dx, dL/dh0 of each direction and layer, and every parameter's gradient
    for ours, ref in zip(compiled, generic):
        assert ours.dtype == ref.dtype
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)
    assert (compiled[0][lengths[2]:, 2] == 0).all()  # padded steps output zeros
    for ours, ref in zip(compiled_bf16, generic):  # under bf16 autocast: the float32 result to bf16 precision
        assert ours.dtype == ref.dtype
        assert (ours - ref).norm() <= 5e-2 * ref.norm()  # bf16 weight gradients: about 2% (8 mantissa bits)


@pytest.mark.skipif(not rk.cells.min_kernels.available(), reason="Numba is not installed (recurrentkit[fast])")
def test_compiled_pass_leaves_torchs_thread_count_alone():
    saved = torch.get_num_threads()
    layer = rk.Recurrent("min_gru", 4, 8)
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            layer(torch.randn(6, 3, 4, requires_grad=True))[0].sum().backward()
            assert torch.get_num_threads() == threads  # Numba's OpenMP start-up would set it to every core
    finally:
        torch.set_num_threads(saved)


@pytest.mark.skipif(not rk.cells.min_kernels.available(), reason="Numba is not installed (recurrentkit[fast])")
def test_an_unknown_compiled_pass_is_a_clear_error():
    class Decay(LinearRecurrentCell):
        compiled_pass = "ema"

        def project_input(self, x):
            return x

        def coefficients(self, u):
            return torch.full_like(u, 0.5), u

    with pytest.raises(ValueError, match="no compiled pass named 'ema'"):
        Decay(3, 3).forward_sequence(torch.randn(4, 2, 3), LinearState(torch.zeros(2, 3)))
