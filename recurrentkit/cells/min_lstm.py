"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM reduced to a linear recurrence with normalised
forget and input gates, trained by a scan."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from .linear import ProjectedLinearCell
from .min_gru import g, g_derivative, log_g
from .registry import register_cell


class MinLSTMState(NamedTuple):
    h: Tensor


@register_cell("min_lstm")
class MinLSTMCell(ProjectedLinearCell):
    """minLSTM, Feng et al. (2024)::

        f_t = σ(W_f x_t + b_f),   i_t = σ(W_i x_t + b_i)          # gates from the input only
        f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)         # normalised: f' + i' = 1
        h̃_t = g(W_h x_t + b_h)                                     # g(v) = v + 0.5 (v >= 0), σ(v) (v < 0)
        h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t,   y_t = h_t

    ``weight_ih = [W_f; W_i; W_h]`` [3H, I]. With ``d_t = log i_t - log f_t`` (``log σ`` of the pre-activations)
    the normalised gates are ``f' = σ(-d)`` and ``i' = 1 - f' = σ(d)``, stable for any gate values; ``scan="log"``
    uses ``log f' = -softplus(d)``, ``log i' = -softplus(-d)`` as in the paper's log-space version.
    """

    state_type = MinLSTMState

    num_projections = 3

    compiled_pass = "min_lstm"  # recurrentkit.cells.min_kernels, where it applies

    def coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        forget, input, candidate = u.chunk(3, dim=-1)
        a = torch.sigmoid(F.logsigmoid(forget) - F.logsigmoid(input))  # f' = f / (f + i) = σ(log f - log i)
        return a, (1 - a) * g(candidate)

    def log_coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        forget, input, candidate = u.chunk(3, dim=-1)
        d = F.logsigmoid(input) - F.logsigmoid(forget)  # log i - log f
        return -F.softplus(d), log_g(candidate) - F.softplus(-d)

    def coefficients_backward(self, u: Tensor, grad_a: Tensor, grad_b: Tensor, out: Tensor) -> Tensor:
        """``dL/du`` by hand, with ``e = log f - log i``, ``a = σ(e)``, ``b = (1 - a) h̃``:
        ``dL/de = (dL/da - dL/db ⊙ h̃) ⊙ a(1 - a)``, ``dL/dk_f = dL/de ⊙ σ(-k_f)``, ``dL/dk_i = -dL/de ⊙ σ(-k_i)``,
        ``dL/dv = dL/db ⊙ (1 - a) ⊙ g'(v)``."""
        forget, input, candidate = u.chunk(3, dim=-1)
        grad_forget, grad_input, grad_candidate = out.chunk(3, dim=-1)
        a = torch.sigmoid(F.logsigmoid(forget) - F.logsigmoid(input))
        s = torch.sigmoid(candidate)
        delta = torch.addcmul(grad_a, grad_b, torch.maximum(candidate + 0.5, s), value=-1)
        delta.mul_(torch.addcmul(a, a, a, value=-1))
        torch.mul(delta, torch.sigmoid(forget.neg()), out=grad_forget)
        torch.mul(delta, torch.sigmoid(input.neg()), out=grad_input).neg_()
        torch.mul(grad_b, torch.sub(1, a), out=grad_candidate).mul_(g_derivative(candidate, s))
        return out
