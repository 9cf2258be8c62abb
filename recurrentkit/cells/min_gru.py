"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates ignore the state, trained by a scan."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .init import uniform_
from .linear import LinearRecurrentCell
from .registry import register_cell


class MinGRUState(NamedTuple):
    h: Tensor


def g(x: Tensor) -> Tensor:
    """The paper's positive activation for the log-space scan: ``x + 0.5`` for ``x >= 0``, ``σ(x)`` below."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """``log g(x)``, computed stably (``-softplus(-x)`` below zero)."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


@register_cell("min_gru")
class MinGRUCell(LinearRecurrentCell):
    """minGRU, Feng et al. (2024)::

        z_t = σ(W_z x_t + b_z)                    # update gate, from the input only
        h̃_t = g(W_h x_t + b_h)                    # candidate, g(v) = v + 0.5 (v >= 0), σ(v) (v < 0)
        h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t,    y_t = h_t

    Linear in ``h``: ``a_t = 1 - z_t``, ``b_t = z_t ⊙ h̃_t``, so whole sequences run as one matmul
    (``weight_ih = [W_z; W_h]`` [2H, I]) and a parallel scan; :meth:`step` is the same update one step at a time.
    ``scan="log"`` runs the paper's log-space version (``log a_t = -softplus(k_t)``,
    ``log b_t = -softplus(-k_t) + log g(W_h x_t)``). Not the slides' simplified GRU (``"simplified_gru"``), whose
    gate reads ``c_{t-1}``.
    """

    state_type = MinGRUState

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, scan: str = "linear",
                 chunk_size: int | None = None) -> None:
        super().__init__(input_size, hidden_size, scan=scan, chunk_size=chunk_size)
        self.weight_ih = nn.Parameter(torch.empty(2 * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(2 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            uniform_(p, self.input_size)  # nn.Linear's bound 1/sqrt(fan_in): there is no hidden-to-hidden matrix

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        gate, candidate = u.chunk(2, dim=-1)
        return torch.sigmoid(-gate), torch.sigmoid(gate) * g(candidate)

    def log_coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        gate, candidate = u.chunk(2, dim=-1)
        return -F.softplus(gate), log_g(candidate) - F.softplus(-gate)
