"""Leaky-integrator units (Jaeger 2007; Deep Learning book §10.9), with fixed, learned or multiple time-scales."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import RecurrentCell
from .init import init_recurrent_, uniform_
from .kernels import LeakyKernel, LeakyLoop
from .registry import register_cell

LEAK_MODES = ("fixed", "learned", "multiscale")


class LeakyState(NamedTuple):
    h: Tensor


@register_cell("leaky")
class LeakyCell(RecurrentCell):
    """Leaky-integrator RNN::

        h_t = a ⊙ h_{t-1} + (1 - a) ⊙ tanh(W x_t + U h_{t-1} + b)

    ``a`` is the retention per unit (``a = 0`` is an Elman cell; ``a → 1`` remembers for ~``1/(1-a)`` steps).

    Args:
        alpha: the retention ``a`` for ``leak="fixed"`` and the initial value for ``leak="learned"``.
        leak: ``"fixed"`` (one constant ``a``), ``"learned"`` (one ``a`` per unit, ``a = σ(θ)`` trained), or
            ``"multiscale"`` (fixed per-unit ``a_i = 1 - 1/τ_i`` with time constants ``τ_i`` log-spaced over
            ``timescales``: multiple time-scale units).
        timescales: ``(τ_min, τ_max)`` in steps, for ``leak="multiscale"``; ``τ >= 1``.
        init: hidden-to-hidden init (``"uniform"``, ``"orthogonal"``, ``"identity"``, ``"xavier"``).
    """

    state_type = LeakyState
    kernel = LeakyKernel  # training: LeakyLoop's hand-written backward

    def __init__(self, input_size: int, hidden_size: int, alpha: float = 0.5, leak: str = "fixed",
                 timescales: tuple[float, float] = (1.0, 100.0), bias: bool = True, init: str = "uniform") -> None:
        super().__init__(input_size, hidden_size)
        if leak not in LEAK_MODES:
            raise ValueError(f"leak must be one of {LEAK_MODES}, got {leak!r}")
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha (retention) must be in [0, 1), got {alpha}")
        self.leak, self.init = leak, init
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        if leak == "learned":
            alpha = min(max(alpha, 1e-4), 1 - 1e-4)
            self.alpha_logit = nn.Parameter(torch.full((hidden_size,), math.log(alpha / (1 - alpha))))
        elif leak == "multiscale":
            low, high = timescales
            if not 1.0 <= low <= high:
                raise ValueError(f"timescales must satisfy 1 <= tau_min <= tau_max, got {timescales}")
            taus = torch.logspace(math.log10(low), math.log10(high), hidden_size)
            self.register_buffer("alpha", 1.0 - 1.0 / taus)
        else:
            self.register_buffer("alpha", torch.full((hidden_size,), float(alpha)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            if name != "alpha_logit":
                uniform_(p, self.hidden_size)
        init_recurrent_(self.weight_hh, self.init, self.hidden_size)

    def retention(self) -> Tensor:
        """The per-unit retention ``a`` [H]."""
        return torch.sigmoid(self.alpha_logit) if self.leak == "learned" else self.alpha

    def project_input(self, x: Tensor) -> Tensor:
        bias = None if self.bias_ih is None else self.bias_ih + self.bias_hh  # one bias in the matmul: no extra pass
        return F.linear(x, self.weight_ih, bias)

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: LeakyState) -> tuple[Tensor, LeakyState]:
        h = torch.lerp(torch.tanh(u_t + r_t), state.h, self.retention())  # cand + a * (h - cand)
        return h, LeakyState(h)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, leak={self.leak!r}"


__all__ = ["LEAK_MODES", "LeakyCell", "LeakyLoop", "LeakyState"]
