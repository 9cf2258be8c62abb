"""The ESN's no-grad fast paths (NumPy/OpenBLAS loop, TorchScript loop) give the autograd loop's states."""

from __future__ import annotations

import pytest
import torch

import recurrentkit as rk
from recurrentkit.cells.esn import ESNCell


@pytest.mark.parametrize("leak_rate", [1.0, 0.3])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_all_paths_give_the_same_states(leak_rate, batch, dtype):
    x = torch.randn(150, batch, 2, dtype=dtype)
    results = {}
    for backend in ("loop", "script", "numpy", "auto"):
        cell = ESNCell(2, 60, spectral_radius=0.95, leak_rate=leak_rate, bias_scaling=0.3, seed=7, backend=backend)
        cell = cell.to(dtype)
        h0 = 0.1 * torch.ones(batch, 60, dtype=dtype)
        with torch.no_grad():
            out, state = cell.forward_sequence(x, type(cell.initial_state(1))(h0))
        assert out.dtype == dtype and out.shape == (150, batch, 60)
        results[backend] = (out, state.h)
    ref_out, ref_h = results["loop"]
    for backend, (out, h) in results.items():
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=0, msg=f"{backend} states differ")
        torch.testing.assert_close(h, ref_h, atol=1e-5, rtol=0, msg=f"{backend} final state differs")
        torch.testing.assert_close(h, out[-1], atol=0, rtol=0)


def test_batched_equals_one_sequence_at_a_time():
    cell = ESNCell(1, 80, leak_rate=0.5, seed=3)
    x = torch.randn(100, 4, 1)
    with torch.no_grad():
        batched, _ = cell.forward_sequence(x, cell.initial_state(4))
        single = torch.cat([cell.forward_sequence(x[:, i:i + 1], cell.initial_state(1))[0] for i in range(4)], 1)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)


def test_state_carry_over_two_halves_on_the_fast_path():
    cell = ESNCell(1, 50, leak_rate=0.3, seed=1)
    x = torch.randn(80, 2, 1)
    with torch.no_grad():
        full, h_full = cell.forward_sequence(x, cell.initial_state(2))
        first, h = cell.forward_sequence(x[:40], cell.initial_state(2))
        second, h2 = cell.forward_sequence(x[40:], h)
    torch.testing.assert_close(torch.cat([first, second]), full, atol=1e-6, rtol=0)
    torch.testing.assert_close(h2.h, h_full.h, atol=1e-6, rtol=0)


def test_gradients_take_the_autograd_path():
    cell = ESNCell(2, 30, seed=0)  # backend="auto": no grad -> numpy; grad needed -> autograd loop
    x = torch.randn(20, 1, 2, requires_grad=True)
    out, _ = cell.forward_sequence(x, cell.initial_state(1))
    assert out.requires_grad
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        fast, _ = cell.forward_sequence(x, cell.initial_state(1))
    torch.testing.assert_close(fast, out.detach(), atol=1e-5, rtol=0)


def test_recurrent_layer_uses_the_same_states():
    layer = rk.Recurrent("esn", 1, 40, leak_rate=0.4, seed=5)
    x = torch.randn(60, 2, 1)
    with torch.no_grad():
        out, _ = layer(x)
    loop = ESNCell(1, 40, leak_rate=0.4, seed=5, backend="loop")
    with torch.no_grad():
        ref, _ = loop.forward_sequence(x, loop.initial_state(2))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_same_seed_same_reservoir_and_bad_backend():
    a, b = ESNCell(1, 30, seed=11, backend="numpy"), ESNCell(1, 30, seed=11)
    for name in ("weight_ih", "weight_hh", "bias"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=0, rtol=0)
    with pytest.raises(ValueError, match="backend"):
        ESNCell(1, 30, backend="cuda-magic")
