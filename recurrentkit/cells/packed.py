"""The recurrent matmul of a time loop, with the weight prepared once for all its steps (MKL's packed GEMM on CPU)."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

MIN_STEPS = 8  # packing costs about one step's product (122 us for a 650 x 650 weight), so short loops don't pack


@functools.lru_cache(maxsize=1)
def mkl_packing_available() -> bool:
    """Whether this PyTorch build exposes MKL's packed GEMM (``torch.ops.mkl._mkl_linear``; x86 CPU builds do)."""
    try:
        return bool(torch.backends.mkl.is_available()) and hasattr(torch.ops.mkl, "_mkl_linear")
    except (AttributeError, RuntimeError):
        return False


class StepProduct:
    """``x ↦ x Wᵀ`` for the ``T`` same-shaped products ``[B, H] x [H, G]`` of a recurrent loop.

    ``torch.mm(x, W.t())`` makes MKL repack the transposed weight at every call. On a CPU with MKL and float32
    tensors the weight is instead packed once per sequence (``cblas_sgemm_pack``, through
    ``torch.ops.mkl._mkl_reorder_linear_weight``) and each step multiplies by the packed copy: ``[20, 650] x
    [650, 650]`` in 96 us against 134 us, ``[20, 650] x [650, 2600]`` in 434 us against 677 us (one thread; 47 against
    74 us and 225 against 358 us with two). Anywhere else (GPU, other dtypes, under autocast, loops shorter than
    :data:`MIN_STEPS`, builds without MKL) it is ``torch.mm`` / ``torch.addmm`` with ``W.t()``, as before.

    It is meant for the forward loops of the kernels, which run without autograd: gradients of ``W`` come from the
    kernels' own backward, which multiplies by ``W`` itself.
    """

    def __init__(self, weight: Tensor, batch: int, steps: int, dtype: torch.dtype) -> None:
        self.weight, self.batch = weight, batch
        self.packed = None
        if (steps >= MIN_STEPS and weight.device.type == "cpu" and weight.dtype == torch.float32 == dtype
                and not torch.is_autocast_enabled("cpu") and not torch.is_grad_enabled() and mkl_packing_available()):
            self.packed = torch.ops.mkl._mkl_reorder_linear_weight(weight, batch)
        self.weight_t = weight.t()

    def mm(self, x: Tensor) -> Tensor:
        """``x Wᵀ``."""
        if self.packed is not None and x.shape[0] == self.batch:
            return torch.ops.mkl._mkl_linear(x, self.packed, self.weight, None, self.batch)
        return torch.mm(x, self.weight_t)

    def linear(self, x: Tensor, bias: Tensor) -> Tensor:
        """``x Wᵀ + bias`` for a ``[G]`` bias (``F.linear``; the packed product adds it in the same call)."""
        if self.packed is not None and x.shape[0] == self.batch:
            return torch.ops.mkl._mkl_linear(x, self.packed, self.weight, bias, self.batch)
        return torch.addmm(bias, x, self.weight_t)

    def addmm(self, bias: Tensor, x: Tensor, out: Tensor | None = None) -> Tensor:
        """``bias + x Wᵀ`` (``bias`` ``[B, G]`` or ``[G]``), written into ``out`` when given."""
        if self.packed is not None and x.shape[0] == self.batch:
            return torch.add(bias, self.mm(x), out=out)
        return torch.addmm(bias, x, self.weight_t, out=out)
