"""The scans of h_t = a_t h_{t-1} + b_t: linear (chunked, hand-written backward), log-space, and the cell kernel."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recurrentkit.cells.scan import linear_scan, log_linear_scan, scan_coefficients, sequential_scan


def _inputs(steps, positive=False, batch=3, width=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(steps, batch, width, generator=gen, dtype=torch.double)
    if not positive:
        a = a * 2 - 1  # any sign: the linear scan must not assume a > 0
    b = torch.randn(steps, batch, width, generator=gen, dtype=torch.double)
    b = b.abs() if positive else b
    h0 = torch.randn(batch, width, generator=gen, dtype=torch.double)
    return a.requires_grad_(), b.requires_grad_(), h0.requires_grad_()


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 8])
@pytest.mark.parametrize("steps", [1, 2, 9, 40])
@pytest.mark.parametrize("with_h0", [True, False])
def test_linear_scan_equals_the_step_loop_values_and_gradients(steps, chunk_size, with_h0):
    a, b, h0 = _inputs(steps)
    h0 = h0 if with_h0 else None
    inputs = [a, b] + ([h0] if with_h0 else [])
    reference = sequential_scan(a, b, h0)
    ours = linear_scan(a, b, h0, chunk_size=chunk_size)
    torch.testing.assert_close(ours, reference)
    grad = torch.randn_like(reference)
    for mine, ref in zip(torch.autograd.grad(ours, inputs, grad), torch.autograd.grad(reference, inputs, grad)):
        torch.testing.assert_close(mine, ref)


def test_linear_scan_gradcheck_and_no_grad_path():
    a, b, h0 = _inputs(7, batch=2, width=3)
    for chunk in (1, 3):
        assert torch.autograd.gradcheck(lambda a, b, h, c=chunk: linear_scan(a, b, h, chunk_size=c), (a, b, h0))
    with torch.no_grad():
        out = linear_scan(a, b, h0, chunk_size=3)
    assert not out.requires_grad
    torch.testing.assert_close(out, sequential_scan(a, b, h0).detach())


def test_linear_scan_closed_form_with_constant_coefficients():
    # a = 0.5, b = 1, h0 = 0  =>  h_t = 2 (1 - 0.5^(t+1))
    steps = 30
    a, b = torch.full((steps, 1), 0.5, dtype=torch.double), torch.ones(steps, 1, dtype=torch.double)
    expected = 2 * (1 - 0.5 ** torch.arange(1, steps + 1, dtype=torch.double)).unsqueeze(1)
    for chunk in (None, 1, 4, 7):
        torch.testing.assert_close(linear_scan(a, b, chunk_size=chunk), expected)


@pytest.mark.parametrize("chunk_size", [None, 5])
def test_log_scan_equals_the_step_loop_for_positive_coefficients(chunk_size):
    a, b, h0 = _inputs(23, positive=True)
    reference = sequential_scan(a, b, h0)  # h0 of any sign is carried in linear space
    ours = log_linear_scan(a.log(), b.log(), h0, chunk_size=chunk_size)
    torch.testing.assert_close(ours, reference)
    grad = torch.randn_like(reference)
    for mine, ref in zip(torch.autograd.grad(ours, (a, b, h0), grad),
                         torch.autograd.grad(reference, (a, b, h0), grad)):
        torch.testing.assert_close(mine, ref)


def test_log_scan_takes_b_zero_as_minus_infinity():
    a, b, _ = _inputs(6, positive=True)
    b = b.detach().clone()
    b[2:4] = 0.0
    torch.testing.assert_close(log_linear_scan(a.detach().log(), b.log()), sequential_scan(a.detach(), b))


def test_log_scan_chunks_keep_float32_accurate_on_long_sequences():
    gen = torch.Generator().manual_seed(1)
    steps = 4096
    a = torch.rand(steps, 2, 8, generator=gen) * 0.5 + 0.25
    b = torch.rand(steps, 2, 8, generator=gen)
    reference = sequential_scan(a.double(), b.double())
    chunked = log_linear_scan(a.log(), b.log(), chunk_size=64)
    single = log_linear_scan(a.log(), b.log(), chunk_size=None)
    scale = reference.abs().max()
    error_chunked = ((chunked.double() - reference).abs().max() / scale).item()
    error_single = ((single.double() - reference).abs().max() / scale).item()
    assert error_chunked < 2e-5
    assert error_chunked < error_single  # one pass over 4096 steps loses precision as |cumsum(log a)| grows


def test_bad_shapes_and_chunk_sizes_are_named():
    a, b, h0 = _inputs(4)
    with pytest.raises(ValueError, match="a and b must have the same shape"):
        linear_scan(a[:, :2], b)
    with pytest.raises(ValueError, match="h0 must have shape"):
        linear_scan(a, b, h0[:1])
    with pytest.raises(ValueError, match="chunk_size"):
        linear_scan(a, b, chunk_size=0)
    with pytest.raises(ValueError, match="log_a and log_b"):
        log_linear_scan(a[:2], b)
    with pytest.raises(ValueError, match="T >= 1"):
        linear_scan(a[:0], b[:0])


class _EMA(nn.Module):
    """Coefficients with a parameter of their own: a = σ(θ) per unit, b = (1 - a) u."""

    def __init__(self, width):
        super().__init__()
        self.theta = nn.Parameter(torch.linspace(-1, 2, width, dtype=torch.double))

    def coefficients(self, u):
        a = torch.sigmoid(self.theta).expand_as(u)
        return a, (1 - a) * u


@pytest.mark.parametrize("block_steps", [1, 3, None])
def test_scan_coefficients_gradients_reach_u_h0_and_the_coefficient_parameters(block_steps):
    cell = _EMA(4)
    gen = torch.Generator().manual_seed(2)
    u = torch.randn(9, 2, 4, generator=gen, dtype=torch.double, requires_grad=True)
    h0 = torch.randn(2, 4, generator=gen, dtype=torch.double, requires_grad=True)
    mask = torch.arange(9).unsqueeze(1) < torch.tensor([9, 5])
    assert torch.autograd.gradcheck(
        lambda u, h0, theta: scan_coefficients(cell, u, h0, mask, block_steps=block_steps), (u, h0, cell.theta))
    out = scan_coefficients(cell, u, h0, mask, block_steps=block_steps)
    a, b = cell.coefficients(u)
    keep = mask.unsqueeze(-1)
    torch.testing.assert_close(out, sequential_scan(torch.where(keep, a, 1.0), torch.where(keep, b, 0.0), h0))
    torch.testing.assert_close(out[5:, 1], out[4, 1].expand(4, 4))  # padded steps keep the last real state
