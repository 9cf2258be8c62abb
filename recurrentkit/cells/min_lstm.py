"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM reduced to a linear recurrence with normalised
forget and input gates, trained by a scan."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .init import uniform_
from .linear import LinearRecurrentCell
from .min_gru import g, log_g
from .registry import register_cell


class MinLSTMState(NamedTuple):
    h: Tensor


@register_cell("min_lstm")
class MinLSTMCell(LinearRecurrentCell):
    """minLSTM, Feng et al. (2024)::

        f_t = σ(W_f x_t + b_f),   i_t = σ(W_i x_t + b_i)          # gates from the input only
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)         # normalised: f' + i' = 1
        h̃_t = g(W_h x_t + b_h)                                     # g(v) = v + 0.5 (v >= 0), σ(v) (v < 0)
        h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t,   y_t = h_t

    ``weight_ih = [W_f; W_i; W_h]`` [3H, I]. With ``d_t = log i_t - log f_t`` the normalised gates are
    ``f' = σ(-d)`` and ``i' = σ(d)`` (computed that way, stable for any gate values); ``scan="log"`` uses
    ``log f' = -softplus(d)``, ``log i' = -softplus(-d)`` as in the paper's log-space version.
    """

    state_type = MinLSTMState

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, scan: str = "linear",
                 chunk_size: int | None = None) -> None:
        super().__init__(input_size, hidden_size, scan=scan, chunk_size=chunk_size)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            uniform_(p, self.input_size)  # nn.Linear's bound 1/sqrt(fan_in): there is no hidden-to-hidden matrix

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    @staticmethod
    def _log_ratio(forget: Tensor, input: Tensor) -> Tensor:
        """``d = log i - log f = softplus(-k_f) - softplus(-k_i)``."""
        return F.softplus(-forget) - F.softplus(-input)

    def coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        forget, input, candidate = u.chunk(3, dim=-1)
        d = self._log_ratio(forget, input)
        return torch.sigmoid(-d), torch.sigmoid(d) * g(candidate)

    def log_coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        forget, input, candidate = u.chunk(3, dim=-1)
        d = self._log_ratio(forget, input)
        return -F.softplus(d), log_g(candidate) - F.softplus(-d)
