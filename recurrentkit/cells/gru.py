"""Gated recurrent unit (Cho et al. 2014), the full form with reset and update gates."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import RecurrentCell
from .init import init_recurrent_, uniform_
from .registry import register_cell


class GRUState(NamedTuple):
    h: Tensor


@register_cell("gru")
class GRUCell(RecurrentCell):
    """GRU, gate order ``r, z, n`` and equations as in ``torch.nn.GRU``::

        r_t = σ(W_r x_t + b_ir + U_r h_{t-1} + b_hr)               # reset gate
        z_t = σ(W_z x_t + b_iz + U_z h_{t-1} + b_hz)               # update gate
        n_t = tanh(W_n x_t + b_in + r_t ⊙ (U_n h_{t-1} + b_hn))    # candidate
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    Runs on the fused ``torch.nn.GRU`` kernel when the layer allows it.
    """

    state_type = GRUState

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, init: str = "uniform") -> None:
        super().__init__(input_size, hidden_size)
        self.init = init
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            uniform_(p, self.hidden_size)
        if self.init != "uniform":
            init_recurrent_(self.weight_hh, self.init, self.hidden_size, gates=3)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: GRUState) -> tuple[Tensor, GRUState]:
        h = state.h
        hh = r_t if self.bias_hh is None else r_t + self.bias_hh
        i_r, i_z, i_n = u_t.chunk(3, dim=-1)
        h_r, h_z, h_n = hh.chunk(3, dim=-1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = n + z * (h - n)
        return h, GRUState(h)

    @property
    def fused_mode(self) -> str | None:
        return "GRU"

    def fused_weights(self) -> list[Tensor]:
        if self.bias_ih is None:
            return [self.weight_ih, self.weight_hh]
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
