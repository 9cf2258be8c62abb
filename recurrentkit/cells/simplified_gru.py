"""The simplified GRU of the lectures: an update gate and no reset gate."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import RecurrentCell
from .init import init_recurrent_, uniform_
from .registry import register_cell


class SimplifiedGRUState(NamedTuple):
    c: Tensor


@register_cell("simplified_gru")
class SimplifiedGRUCell(RecurrentCell):
    """Simplified GRU (the slides' "memory cell" form, update gate only)::

        c̃_t = tanh(W_c x_t + U_c c_{t-1} + b_c)            # candidate memory cell
        Γ_u = σ(W_u x_t + U_u c_{t-1} + b_u)               # update gate
        c_t = Γ_u ⊙ c̃_t + (1 - Γ_u) ⊙ c_{t-1},   y_t = c_t

    ``W = [W_u; W_c]`` is ``weight_ih`` [2H, I] and ``U = [U_u; U_c]`` is ``weight_hh`` [2H, H]. Registered as
    ``simplified_gru`` (until 0.1.0 ``mingru``, the name of a different cell: the minGRU of Feng et al. 2024, "Were
    RNNs All We Needed?", whose gates do not see ``c_{t-1}``).
    """

    state_type = SimplifiedGRUState

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, init: str = "uniform") -> None:
        super().__init__(input_size, hidden_size)
        self.init = init
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(2 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            uniform_(p, self.hidden_size)
        if self.init != "uniform":
            init_recurrent_(self.weight_hh, self.init, self.hidden_size, gates=2)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: SimplifiedGRUState) -> tuple[Tensor, SimplifiedGRUState]:
        c = state.c
        gate, candidate = (u_t + r_t).chunk(2, dim=-1)
        c = torch.lerp(c, torch.tanh(candidate), torch.sigmoid(gate))  # c + Γ (c̃ - c)
        return c, SimplifiedGRUState(c)
