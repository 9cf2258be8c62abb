"""The whole-sequence passes of min_gru and min_lstm compiled with Numba: one pass over memory each way.

The generic scan (:func:`~recurrentkit.cells.scan.scan_coefficients`) computes the coefficients, scans them and
back-propagates through them as separate whole-block tensor operations: about 20 passes over ``[T, B, H]`` arrays
per layer, forward and backward. Here the transcendental functions of the projected input (``σ``, and min_lstm's
stable normalised forget gate) are a few vectorised torch calls, and the update ``h_t = a_t h_{t-1} + b_t`` with its
coefficients, and its backward, each run as one compiled loop (:mod:`recurrentkit.cells._min_numba`), the batch rows
shared out over ``torch.get_num_threads()`` threads. The same function as the generic path, up to float32 rounding;
used by :class:`~recurrentkit.cells.min_gru.MinGRUCell` and :class:`~recurrentkit.cells.min_lstm.MinLSTMCell` on
CPU when Numba is installed (``pip install "recurrentkit[fast]"``).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from ..compiled_loops import numba_available, numba_threads
from .scan import _block_steps

__all__ = ["CompiledScan", "available", "applies", "run"]


def available() -> bool:
    """Whether Numba imports (the compiled passes' only requirement beyond torch)."""
    return numba_available()


def applies(u: Tensor, h0: Tensor) -> bool:
    """The compiled pass runs for float32 states on the CPU outside ``torch.compile`` when Numba is installed."""
    return (u.device.type == "cpu" and h0.dtype == torch.float32 and u.dim() == 3 and u.shape[0] > 0
            and not torch.compiler.is_compiling() and available())


def min_gru_inputs(u: Tensor) -> Tensor:
    """``[z, σ(c)] = σ(u)``."""
    return torch.sigmoid(u)


def min_lstm_inputs(u: Tensor) -> Tensor:
    """``[a, σ(-k_f), σ(-k_i), σ(c)]``, ``a = σ(log σ(k_f) - log σ(k_i))`` (finite for any pre-activations); in blocks
    of time whose temporaries stay in cache (whole-sequence temporaries cost a page-faulting allocation each)."""
    hidden = u.shape[-1] // 3
    pre = u.new_empty(*u.shape[:-1], 4 * hidden)
    block = _block_steps(u.shape[0], u[0].numel() // 3)
    for start in range(0, u.shape[0], block):
        part, out = u[start:start + block], pre[start:start + block]
        forget, input = part[..., :hidden], part[..., hidden:2 * hidden]
        torch.sigmoid(F.logsigmoid(forget).sub_(F.logsigmoid(input)), out=out[..., :hidden])
        torch.sigmoid(part[..., :2 * hidden].neg(), out=out[..., hidden:3 * hidden])
        torch.sigmoid(part[..., 2 * hidden:], out=out[..., 3 * hidden:])
    return pre


_PASSES = {"min_gru": min_gru_inputs, "min_lstm": min_lstm_inputs}


def _loops(cell: str, direction: str):
    from . import _min_numba

    return getattr(_min_numba, f"{cell}_{direction}")


class CompiledScan(torch.autograd.Function):
    """``h = CompiledScan.apply(cell, u, h0, keep)``: all states ``[T, B, H]`` of ``cell`` (``"min_gru"`` or
    ``"min_lstm"``) from its projected input ``u`` ``[T, B, G]``, ``h0`` ``[B, H]`` and ``keep`` ``[T, B]`` (uint8, 0
    at padded steps, which keep the state)."""

    @staticmethod
    def forward(ctx, cell: str, u: Tensor, h0: Tensor, keep: Tensor) -> Tensor:
        u32 = u.detach().to(torch.float32).contiguous()  # under autocast u may be bfloat16
        pre = _PASSES[cell](u32)
        h0 = h0.detach().contiguous()
        out = u32.new_empty(u32.shape[0], u32.shape[1], h0.shape[-1])
        with numba_threads(min(torch.get_num_threads(), u32.shape[1])):
            _loops(cell, "forward")(u32.numpy(), pre.numpy(), keep.numpy(), h0.numpy(), out.numpy())
        ctx.cell, ctx.input_dtype = cell, u.dtype
        ctx.save_for_backward(u32, pre, keep, h0, out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        u32, pre, keep, h0, out = ctx.saved_tensors
        grad_out = grad_out.to(torch.float32).contiguous()
        grad_u, grad_h0 = torch.empty_like(u32), torch.empty_like(h0)
        with numba_threads(min(torch.get_num_threads(), u32.shape[1])):
            _loops(ctx.cell, "backward")(u32.numpy(), pre.numpy(), keep.numpy(), h0.numpy(), out.numpy(),
                                         grad_out.numpy(), grad_u.numpy(), grad_h0.numpy())
        return None, grad_u.to(ctx.input_dtype), grad_h0, None


def run(cell: str, u: Tensor, h0: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """The layer's outputs (zero at padded steps) and the final state ``[B, H]`` of ``cell`` over ``u``."""
    if cell not in _PASSES:
        raise ValueError(f"no compiled pass named {cell!r} (a cell's compiled_pass must be one of {sorted(_PASSES)} "
                         "or None)")
    keep = (u.new_ones(u.shape[:2], dtype=torch.uint8) if mask is None else mask.to(torch.uint8)).contiguous()
    h = CompiledScan.apply(cell, u, h0, keep)
    return (h if mask is None else h * mask.unsqueeze(-1).to(h.dtype)), h[-1]
