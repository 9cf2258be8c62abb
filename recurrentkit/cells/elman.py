"""Elman (vanilla) recurrent cell."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from .base import RecurrentCell
from .init import init_recurrent_, uniform_
from .registry import register_cell

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
_FUSED_MODES = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}  # torch.nn.RNN has no sigmoid kernel


class ElmanState(NamedTuple):
    h: Tensor


@register_cell("elman")
class ElmanCell(RecurrentCell):
    """Elman network: ``h_t = act(W x_t + b_ih + U h_{t-1} + b_hh)``, ``y_t = h_t``.

    Parameters are named as in ``torch.nn.RNNCell`` (``weight_ih`` = W, ``weight_hh`` = U). ``init="identity"``
    with ``nonlinearity="relu"`` gives the IRNN of Le et al. (2015).

    Args:
        input_size: features of ``x_t``.
        hidden_size: units in ``h_t``.
        nonlinearity: ``"tanh"``, ``"relu"`` or ``"sigmoid"`` (the sigmoid RNN of Ji et al. 2015; loop path only).
        bias: add ``b_ih`` and ``b_hh``.
        init: hidden-to-hidden init: ``"uniform"`` (torch default), ``"orthogonal"``, ``"identity"``, ``"xavier"``.
        init_gain: scale of the orthogonal/identity/xavier init.
    """

    state_type = ElmanState

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", bias: bool = True,
                 init: str = "uniform", init_gain: float = 1.0) -> None:
        super().__init__(input_size, hidden_size)
        if nonlinearity not in _ACTIVATIONS:
            raise ValueError(f"nonlinearity must be one of {sorted(_ACTIVATIONS)}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.init = init
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self._act = _ACTIVATIONS[nonlinearity]
        self.init_gain = init_gain
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            uniform_(p, self.hidden_size)
        init_recurrent_(self.weight_hh, self.init, self.hidden_size, gain=self.init_gain)
        if self.init == "identity" and self.bias_hh is not None:
            nn.init.zeros_(self.bias_ih)
            nn.init.zeros_(self.bias_hh)

    def project_input(self, x: Tensor) -> Tensor:
        u = nn.functional.linear(x, self.weight_ih, self.bias_ih)
        return u if self.bias_hh is None else u + self.bias_hh

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: ElmanState) -> tuple[Tensor, ElmanState]:
        h = self._act(u_t + r_t)
        return h, ElmanState(h)

    @property
    def fused_mode(self) -> str | None:
        return _FUSED_MODES.get(self.nonlinearity)

    def fused_weights(self) -> list[Tensor]:
        if self.bias_ih is None:
            return [self.weight_ih, self.weight_hh]
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}, init={self.init!r}"
