"""StepProduct: the recurrent matmul of the kernels' forward loops, with MKL's packed weight where available."""

from __future__ import annotations

import pytest
import torch

import recurrentkit as rk
from recurrentkit.cells import packed
from recurrentkit.cells.kernels import kernel_applies, run_path
from recurrentkit.cells.packed import MIN_STEPS, StepProduct, mkl_packing_available

needs_mkl = pytest.mark.skipif(not mkl_packing_available(), reason="this PyTorch build has no MKL packed GEMM")
T, B, I, H = MIN_STEPS + 4, 5, 7, 24  # noqa: E741 - long enough to pack


@needs_mkl
@torch.no_grad()
def test_packed_products_equal_torch_mm():
    torch.manual_seed(0)
    weight, x, bias = torch.randn(3 * H, H), torch.randn(B, H), torch.randn(B, 3 * H)
    product = StepProduct(weight, B, T, torch.float32)
    assert product.packed is not None
    torch.testing.assert_close(product.mm(x), x @ weight.t())
    out = torch.empty(B, 3 * H)
    assert product.addmm(bias, x, out=out) is out
    torch.testing.assert_close(out, bias + x @ weight.t())
    torch.testing.assert_close(product.addmm(bias[0], x), bias[0] + x @ weight.t())  # a [G] bias broadcasts
    torch.testing.assert_close(product.linear(x, bias[0]), bias[0] + x @ weight.t())
    torch.testing.assert_close(product.mm(x[:2]), x[:2] @ weight.t())  # another batch size: the plain product


@pytest.mark.parametrize("case", ["short", "double", "grad", "autocast"])
def test_plain_product_where_packing_does_not_apply(case):
    weight = torch.randn(H, H, dtype=torch.double if case == "double" else torch.float32)
    steps = MIN_STEPS - 1 if case == "short" else T
    with torch.set_grad_enabled(case == "grad"), torch.autocast("cpu", enabled=case == "autocast"):
        product = StepProduct(weight, B, steps, weight.dtype)
    assert product.packed is None
    x = torch.randn(B, H, dtype=weight.dtype)
    torch.testing.assert_close(product.mm(x), x @ weight.t())


@needs_mkl
@pytest.mark.parametrize(("name", "kwargs"), [("leaky", {}), ("jordan", {}),
                                             ("jordan", {"output_activation": "sigmoid"}),
                                             ("lstm", {"peepholes": True}), ("lstm", {"layer_norm": True})])
@pytest.mark.parametrize("masked", [False, True])
def test_kernels_with_packed_weights_equal_the_step_loop(name, kwargs, masked, monkeypatch):
    """float32, long enough to pack: the kernels' values and gradients match the autograd step loop's."""
    packed_calls = []
    original_mm = StepProduct.mm

    def spy(self, x):
        packed_calls.append(self.packed is not None)
        return original_mm(self, x)

    monkeypatch.setattr(packed.StepProduct, "mm", spy)
    torch.manual_seed(2)
    cell = rk.create_cell(name, I, H, **kwargs)
    x = torch.randn(T, B, I)
    mask = (torch.rand(T, B) > 0.3) if masked else None
    start = [0.5 * torch.randn(B, s) for s in cell.state_size]
    weights = torch.randn(T, B, cell.output_size)
    path = "kernel" if kernel_applies(cell, True) else "hoisted"
    results = {}
    for which in ("loop", path):
        cell.zero_grad()
        xx, state = x.clone().requires_grad_(), [s.clone().requires_grad_() for s in start]
        out, final = run_path(which, cell, xx, cell.state_type(*state), mask)
        ((out * weights).sum() + sum(f.square().sum() for f in final)).backward()
        results[which] = [out, *final, xx.grad, *(s.grad for s in state), *(p.grad for p in cell.parameters())]
    assert packed_calls and all(packed_calls)  # every product of the kernel's forward used the packed weight
    for ours, ref in zip(results[path], results["loop"]):
        torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
