"""minGRU's whole-sequence pass compiled with Numba: gates, scan and backward in one pass over memory each way.

The generic scan (:func:`~recurrentkit.cells.scan.scan_coefficients`) computes the coefficients, scans them and
back-propagates through them as separate whole-block tensor operations: about 20 passes over ``[T, B, H]`` arrays
per layer, forward and backward. Here ``σ`` of the projected input is one torch call (vectorised), and the update
``h_t = (1 - z_t) h_{t-1} + z_t g(c_t)`` and its backward each run as one compiled loop
(:mod:`recurrentkit.cells._min_gru_numba`), the batch rows shared out over ``torch.get_num_threads()`` threads.
The same function as the generic path, up to float32 rounding; used by
:class:`~recurrentkit.cells.min_gru.MinGRUCell` on CPU when Numba is installed (``pip install "recurrentkit[fast]"``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..compiled_loops import numba_available, numba_threads

__all__ = ["MinGRUScan", "available", "applies"]


def available() -> bool:
    """Whether Numba imports (the compiled path's only requirement beyond torch)."""
    return numba_available()


def applies(u: Tensor, h0: Tensor) -> bool:
    """The compiled pass runs for float32 states on the CPU outside ``torch.compile`` when Numba is installed."""
    return (u.device.type == "cpu" and h0.dtype == torch.float32 and u.dim() == 3 and u.shape[0] > 0
            and not torch.compiler.is_compiling() and available())


def _kernels():
    from . import _min_gru_numba

    return _min_gru_numba


class MinGRUScan(torch.autograd.Function):
    """``h = MinGRUScan.apply(u, h0, keep)``: all states ``[T, B, H]`` from ``u = [W_z; W_h] x + b`` ``[T, B, 2H]``,
    ``h0`` ``[B, H]`` and ``keep`` ``[T, B]`` (uint8, 0 at padded steps, which keep the state)."""

    @staticmethod
    def forward(ctx, u: Tensor, h0: Tensor, keep: Tensor) -> Tensor:
        u32 = u.detach().to(torch.float32).contiguous()  # under autocast u may be bfloat16
        gates = torch.sigmoid(u32)
        h0 = h0.detach().contiguous()
        out = u32.new_empty(u32.shape[0], u32.shape[1], u32.shape[2] // 2)
        with numba_threads(min(torch.get_num_threads(), u32.shape[1])):
            _kernels().forward(u32.numpy(), gates.numpy(), keep.numpy(), h0.numpy(), out.numpy())
        ctx.input_dtype = u.dtype
        ctx.save_for_backward(u32, gates, keep, h0, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        u32, gates, keep, h0, out = ctx.saved_tensors
        grad_out = grad_out.to(torch.float32).contiguous()
        grad_u, grad_h0 = torch.empty_like(u32), torch.empty_like(h0)
        with numba_threads(min(torch.get_num_threads(), u32.shape[1])):
            _kernels().backward(u32.numpy(), gates.numpy(), keep.numpy(), h0.numpy(), out.numpy(), grad_out.numpy(),
                                grad_u.numpy(), grad_h0.numpy())
        return grad_u.to(ctx.input_dtype), grad_h0, None
