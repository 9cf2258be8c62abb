"""Echo-state reservoir (Jaeger 2001): fixed random recurrent weights, only a readout is trained."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from .base import RecurrentCell
from .init import sparse_reservoir
from .kernels import ReservoirKernel
from .openblas import blas_threads  # noqa: F401 (importable from here)
from .registry import register_cell


class ESNState(NamedTuple):
    h: Tensor


BACKENDS = ("auto", "numpy", "script", "loop")


@register_cell("esn")
class ESNCell(RecurrentCell):
    """Leaky echo-state reservoir (reservoirpy's conventions)::

        h_t = (1 - λ) h_{t-1} + λ tanh(W_in (s_in x_t) + W h_{t-1} + b)

    ``W`` is a seeded sparse matrix (a fraction ``density`` of non-zeros, normal values) rescaled to the spectral
    radius ``spectral_radius``; ``W_in`` has entries ±1 with density ``input_density``; ``b`` has entries ±1 scaled
    by ``bias_scaling``. All three are buffers: the cell has no trainable parameters, and the same ``seed`` gives
    the same reservoir. ``λ`` is the leak rate (``λ = 1``: no leak).

    Gradients still flow *through* the reservoir to its input (e.g. a trainable embedding below it). When nothing
    needs a gradient the time loop leaves Python's autograd: ``backend="auto"`` runs it as a NumPy/OpenBLAS loop on
    CPU (fastest measured here: a 1000-unit reservoir runs ~20k steps/s on one sequence, ~3x TorchScript with MKL)
    and as a TorchScript loop elsewhere; ``"numpy"``, ``"script"`` and ``"loop"`` (the autograd loop) force one.
    All paths give the same states (tests/test_esn_speed_paths.py). Many sequences at once run as one
    ``[B, H] x [H, H]`` matmul per step.
    """

    trainable_recurrence = False
    state_type = ESNState
    kernel = ReservoirKernel  # no gradient needed: the NumPy/TorchScript loop picked by ``backend``

    def __init__(self, input_size: int, hidden_size: int, spectral_radius: float = 0.9, leak_rate: float = 1.0,
                 input_scaling: float = 1.0, density: float = 0.1, input_density: float = 0.1,
                 bias_scaling: float = 1.0, seed: int = 0, backend: str = "auto") -> None:
        super().__init__(input_size, hidden_size)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        if not 0.0 < leak_rate <= 1.0:
            raise ValueError(f"leak_rate must be in (0, 1], got {leak_rate}")
        if spectral_radius <= 0:
            raise ValueError(f"spectral_radius must be positive, got {spectral_radius}")
        if not 0.0 < input_density <= 1.0:
            raise ValueError(f"input_density must be in (0, 1], got {input_density}")
        self.spectral_radius, self.leak_rate, self.seed = spectral_radius, leak_rate, seed
        self.input_scaling, self.density = input_scaling, density
        gen = torch.Generator().manual_seed(seed)
        weight_hh = sparse_reservoir(hidden_size, density=density, radius=spectral_radius, generator=gen)
        signs = torch.randint(0, 2, (hidden_size, input_size), generator=gen).double() * 2 - 1
        mask = torch.rand(hidden_size, input_size, generator=gen) < input_density
        weight_ih = signs * mask * input_scaling
        bias = (torch.randint(0, 2, (hidden_size,), generator=gen).double() * 2 - 1) * bias_scaling
        self.register_buffer("weight_ih", weight_ih.float())
        self.register_buffer("weight_hh", weight_hh.float())
        self.register_buffer("bias", bias.float())

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)

    def step(self, u_t: Tensor, state: ESNState) -> tuple[Tensor, ESNState]:
        h = state.h
        h = torch.lerp(h, torch.tanh(torch.addmm(u_t, h, self.weight_hh.t())), self.leak_rate)
        return h, ESNState(h)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, spectral_radius={self.spectral_radius}, "
                f"leak_rate={self.leak_rate}, density={self.density}, seed={self.seed}")
