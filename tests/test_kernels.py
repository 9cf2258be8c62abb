"""The path decision (``choose_path``) and the whole-sequence kernels, padded batches included."""

from __future__ import annotations

import pytest
import torch

import recurrentkit as rk
from recurrentkit.cells.kernels import SequenceKernel, choose_path, kernel_applies, run_path

T, B, I, H = 6, 4, 3, 5  # noqa: E741


def _layer_cells(name, **kwargs):
    return list(rk.Recurrent(name, I, H, bidirectional=True, **kwargs).layers[0])


@pytest.mark.parametrize(("name", "kwargs", "grad", "fused", "expected"), [
    ("lstm", {}, True, True, "fused"),
    ("lstm", {}, True, False, "kernel"),              # force_loop: LSTMLoop
    ("lstm", {}, False, False, "loop"),               # no grad: the hand-written backward buys nothing
    ("lstm", {"peepholes": True}, True, True, "kernel"),
    ("lstm", {"layer_norm": True}, True, True, "hoisted"),
    ("lstm", {"proj_size": 2}, True, False, "hoisted"),
    ("gru", {}, True, False, "hoisted"),
    ("elman", {"nonlinearity": "sigmoid"}, True, True, "hoisted"),   # no sigmoid kernel in torch.nn.RNN
    ("elman", {"nonlinearity": "relu"}, True, True, "fused"),
    ("leaky", {}, True, True, "kernel"),
    ("jordan", {}, True, True, "kernel"),
    ("jordan", {"output_activation": "softmax"}, True, True, "hoisted"),
    ("esn", {}, False, True, "kernel"),               # the NumPy/TorchScript reservoir loop
    ("esn", {}, True, True, "loop"),                  # gradients through the reservoir: autograd
    ("esn", {"backend": "loop"}, False, True, "loop"),
])
def test_choose_path_follows_what_cells_declare(name, kwargs, grad, fused, expected, monkeypatch):
    monkeypatch.setattr("recurrentkit.cells.kernels.HOISTED_MIN_WEIGHT", 0)  # these tiny cells count as large
    assert choose_path(_layer_cells(name, **kwargs), grad=grad, fused=fused) == expected
    assert choose_path(_layer_cells(name, **kwargs), grad=grad, fused=fused, compile=True) in ("fused", "compiled")


def test_hoisted_loop_only_for_a_large_recurrent_weight():
    from recurrentkit.cells.kernels import HOISTED_MIN_WEIGHT

    small = rk.create_cell("simplified_gru", 8, 16)
    large = rk.create_cell("simplified_gru", 8, int((HOISTED_MIN_WEIGHT / 2) ** 0.5) + 1)  # weight_hh is [2H, H]
    assert small.weight_hh.numel() < HOISTED_MIN_WEIGHT <= large.weight_hh.numel()
    assert choose_path([small], grad=True) == "loop"
    assert choose_path([large], grad=True) == "hoisted"
    assert choose_path([large], grad=False) == "loop"


def test_recurrent_runs_the_chosen_path(monkeypatch):
    calls = []
    original = run_path

    def spy(path, cell, x, state, mask=None):
        calls.append((path, mask is not None))
        return original(path, cell, x, state, mask)

    monkeypatch.setattr("recurrentkit.nn.recurrent.run_path", spy)
    layer = rk.Recurrent("lstm", I, H, peepholes=True, bidirectional=True)
    layer(torch.randn(T, B, I), lengths=[6, 2, 3, 1])
    assert calls == [("kernel", True), ("kernel", True)]  # a padded batch keeps the cell's kernel
    calls.clear()
    with torch.no_grad():
        layer(torch.randn(T, B, I))
    assert calls == [("loop", False), ("loop", False)]


VARIANTS = [("lstm", {}), ("lstm", {"peepholes": True}), ("lstm", {"layer_norm": True}), ("leaky", {"leak": "learned"}),
            ("leaky", {}),
            ("jordan", {}), ("jordan", {"output_activation": "identity", "nonlinearity": "relu"}), ("gru", {}),
            ("elman", {"nonlinearity": "sigmoid"})]


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS, ids=[f"{n}-{k}" for n, k in VARIANTS])
def test_every_path_with_a_mask_equals_the_step_loop(name, kwargs):
    """Values and gradients of every path on a mask with holes (not only trailing padding) equal the step loop's."""
    torch.manual_seed(0)
    cell = rk.create_cell(name, I, H, **kwargs).double()
    x = torch.randn(T, B, I, dtype=torch.double)
    mask = torch.rand(T, B) > 0.3
    mask[:, 0] = False  # a row that is padding throughout keeps its initial state
    start = [torch.randn(B, s, dtype=torch.double) for s in cell.state_size]
    weights = torch.randn(T, B, cell.output_size, dtype=torch.double)
    paths = ["loop", "hoisted"] + (["kernel"] if kernel_applies(cell, True) else [])
    results = {}
    for path in paths:
        cell.zero_grad()
        xx, state = x.clone().requires_grad_(), [s.clone().requires_grad_() for s in start]
        out, final = run_path(path, cell, xx, cell.state_type(*state), mask)
        ((out * weights).sum() + sum(f.square().sum() for f in final)).backward()
        results[path] = [out, *final, xx.grad, *(s.grad for s in state), *(p.grad for p in cell.parameters())]
    assert results["loop"][0][~mask].abs().max() == 0
    torch.testing.assert_close(results["loop"][1][:1], start[0][:1])
    for path in paths[1:]:
        for ours, ref in zip(results[path], results["loop"]):
            torch.testing.assert_close(ours, ref, msg=lambda m, p=path: f"{name} {kwargs} path {p}: {m}")


@pytest.mark.parametrize(("name", "kwargs"), [("leaky", {}), ("leaky", {"leak": "learned"}), ("jordan", {}),
                                             ("jordan", {"output_activation": "sigmoid"})])
def test_hand_written_kernels_without_a_mask_equal_the_step_loop(name, kwargs):
    """The in-place backward passes of LeakyLoop and JordanLoop, unpadded, give the step loop's values and gradients."""
    torch.manual_seed(1)
    cell = rk.create_cell(name, I, H, **kwargs).double()
    x = torch.randn(T, B, I, dtype=torch.double)
    start = [torch.randn(B, s, dtype=torch.double) for s in cell.state_size]
    weights = torch.randn(T, B, cell.output_size, dtype=torch.double)
    results = {}
    for path in ("loop", "kernel"):
        cell.zero_grad()
        xx, state = x.clone().requires_grad_(), [s.clone().requires_grad_() for s in start]
        out, final = run_path(path, cell, xx, cell.state_type(*state), None)
        ((out * weights).sum() + sum(f.square().sum() for f in final)).backward()
        results[path] = [out, *final, xx.grad, *(s.grad for s in state), *(p.grad for p in cell.parameters())]
    for ours, ref in zip(results["kernel"], results["loop"]):
        torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("backend", ["numpy", "script"])
def test_reservoir_kernel_with_a_mask_equals_the_step_loop(backend, batch):
    cell = rk.create_cell("esn", I, 20, leak_rate=0.5, backend=backend)
    x, mask = torch.randn(T, batch, I), torch.rand(T, batch) > 0.3
    with torch.no_grad():
        ref_out, ref_state = run_path("loop", cell, x, cell.initial_state(batch), mask)
        out, state = run_path("kernel", cell, x, cell.initial_state(batch), mask)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(state.h, ref_state.h)


def test_a_declared_kernel_is_run_by_the_layer():
    class CountingKernel(SequenceKernel):
        when = "always"
        runs = 0

        @classmethod
        def run(cls, cell, u, state, mask):
            cls.runs += 1
            from recurrentkit.cells.kernels import step_loop
            return step_loop(cell, u, state, mask)

    class CountedGRU(rk.get_cell_class("gru")):
        kernel = CountingKernel

    layer = rk.Recurrent(CountedGRU, I, H, num_layers=2, force_loop=True)
    layer(torch.randn(T, B, I), lengths=[6, 5, 1, 2])
    assert CountingKernel.runs == 2
    assert choose_path(list(rk.Recurrent(CountedGRU, I, H).layers[0]), grad=True) == "fused"  # fused comes first
    with pytest.raises(ValueError, match="fused"):
        run_path("fused", layer.cells()[0], torch.randn(T, B, I), layer.cells()[0].initial_state(B))
