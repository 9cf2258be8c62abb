"""Echo-state reservoir (Jaeger 2001): fixed random recurrent weights, only a readout is trained."""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from .base import RecurrentCell
from .init import sparse_reservoir
from .registry import register_cell


class ESNState(NamedTuple):
    h: Tensor


@torch.jit.script
def _reservoir_loop(u: Tensor, h: Tensor, weight_hh_t: Tensor, leak_rate: float) -> tuple[Tensor, Tensor]:
    """The reservoir recurrence outside Python: ``h ← (1-λ) h + λ tanh(u_t + h Wᵀ)``."""
    outputs = torch.empty_like(u)
    for t in range(u.shape[0]):
        pre = torch.addmm(u[t], h, weight_hh_t)
        h = torch.lerp(h, torch.tanh(pre), leak_rate)
        outputs[t] = h
    return outputs, h


@functools.lru_cache(maxsize=1)
def _openblas_thread_api() -> tuple | None:
    """``(get, set)`` of the OpenBLAS that NumPy loaded (found in /proc/self/maps), or ``None`` where not found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if getter is not None and setter is not None:
                return getter, setter
    return None


@contextlib.contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """Run NumPy's OpenBLAS with ``count`` threads inside the block (best effort: a no-op where not found).

    The reservoir's NumPy loop follows ``torch.get_num_threads()``, so ``torch.set_num_threads(1)`` also keeps
    OpenBLAS on one thread: on an oversubscribed machine a 2-thread ``gemv`` per step collapses, one thread does not.
    """
    api = _openblas_thread_api()
    if api is None:
        yield
        return
    getter, setter = api
    previous = int(getter())
    if previous != count:
        setter(int(count))
    try:
        yield
    finally:
        if previous != count:
            setter(previous)


def _numpy_reservoir(u: np.ndarray, h0: np.ndarray, weight_hh: np.ndarray, leak_rate: float) -> np.ndarray:
    """The reservoir recurrence as a NumPy loop (OpenBLAS ``gemv``/``gemm``, no autograd, no per-step allocation).

    ``u`` is the input projection ``[T, B, H]``, ``h0`` the initial state ``[B, H]``; returns the states
    ``[T + 1, B, H]`` with ``h0`` in row 0. One sequence uses ``W @ h`` (``gemv``), several use ``H @ Wᵀ`` (``gemm``).
    """
    steps, batch, hidden = u.shape
    out = np.empty((steps + 1, batch, hidden), dtype=u.dtype)
    out[0] = h0
    if batch == 1:  # matrix-vector: rows of a [T + 1, H] view
        rows, inputs, weight = out.reshape(steps + 1, hidden), u.reshape(steps, hidden), weight_hh
        product = lambda h, o: np.dot(weight, h, out=o)  # noqa: E731
    else:
        rows, inputs, weight = out, u, weight_hh.T
        product = lambda h, o: np.dot(h, weight, out=o)  # noqa: E731
    add, tanh, mul = np.add, np.tanh, np.multiply
    if leak_rate == 1.0:
        for t in range(steps):
            nxt = rows[t + 1]
            product(rows[t], nxt)
            add(nxt, inputs[t], out=nxt)
            tanh(nxt, out=nxt)
        return out
    buf = np.empty(rows.shape[1:], dtype=u.dtype)
    keep = u.dtype.type(1.0 - leak_rate)
    leak = u.dtype.type(leak_rate)
    for t in range(steps):
        prev, nxt = rows[t], rows[t + 1]
        product(prev, buf)
        add(buf, inputs[t], out=buf)
        tanh(buf, out=buf)
        mul(prev, keep, out=nxt)
        mul(buf, leak, out=buf)
        add(nxt, buf, out=nxt)
    return out


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

    def forward_sequence(self, x: Tensor, state: ESNState) -> tuple[Tensor, ESNState]:
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or state.h.requires_grad)
        backend = self.backend
        if needs_grad or backend == "loop":
            return super().forward_sequence(x, state)
        u = self.project_input(x)
        if backend == "auto":
            backend = "numpy" if u.device.type == "cpu" and u.dtype in (torch.float32, torch.float64) else "script"
        if backend == "numpy":
            if u.device.type != "cpu":
                raise ValueError(f"backend='numpy' runs on CPU only, got input on {u.device}")
            weight = self.weight_hh.detach().to(u.dtype).numpy()
            h0 = state.h.detach().to(u.dtype).numpy()
            with blas_threads(torch.get_num_threads()):
                states = _numpy_reservoir(u.detach().numpy(), h0, weight, float(self.leak_rate))
            states = torch.from_numpy(states)
            return states[1:], ESNState(states[-1].clone())
        outputs, h = _reservoir_loop(u, state.h, self.weight_hh.t().to(u.dtype), float(self.leak_rate))
        return outputs, ESNState(h)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, spectral_radius={self.spectral_radius}, "
                f"leak_rate={self.leak_rate}, density={self.density}, seed={self.seed}")
