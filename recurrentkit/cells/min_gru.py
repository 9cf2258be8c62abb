"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"): a GRU whose gates ignore the state, trained by a scan."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from .linear import ProjectedLinearCell
from .registry import register_cell


class MinGRUState(NamedTuple):
    h: Tensor


def g(x: Tensor) -> Tensor:
    """The paper's positive activation for the log-space scan: ``x + 0.5`` for ``x >= 0``, ``σ(x)`` below.

    Computed as ``max(x + 0.5, σ(x))``, the same function (``x + 0.5 >= σ(x)`` exactly when ``x >= 0``) in three
    passes instead of four.
    """
    return torch.maximum(x + 0.5, torch.sigmoid(x))


def g_derivative(x: Tensor, sigmoid_x: Tensor) -> Tensor:
    """``g'(x)``: 1 for ``x >= 0``, ``σ(x)(1 - σ(x))`` below."""
    return torch.where(x >= 0, 1.0, torch.addcmul(sigmoid_x, sigmoid_x, sigmoid_x, value=-1))


def log_g(x: Tensor) -> Tensor:
    """``log g(x)``, computed stably (``-softplus(-x)`` below zero)."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


@register_cell("min_gru")
class MinGRUCell(ProjectedLinearCell):
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

    num_projections = 2

    compiled_pass = "min_gru"  # recurrentkit.cells.min_kernels, where it applies

    def coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        gate, candidate = u.chunk(2, dim=-1)
        z = torch.sigmoid(gate)
        return 1 - z, z * g(candidate)

    def coefficients_backward(self, u: Tensor, grad_a: Tensor, grad_b: Tensor, out: Tensor) -> Tensor:
        """``dL/du`` by hand: ``dL/dk = (dL/db ⊙ h̃ - dL/da) ⊙ z(1 - z)``, ``dL/dv = dL/db ⊙ z ⊙ g'(v)``."""
        gate, candidate = u.chunk(2, dim=-1)
        grad_gate, grad_candidate = out.chunk(2, dim=-1)
        z, s = torch.sigmoid(gate), torch.sigmoid(candidate)
        delta = torch.mul(grad_b, torch.maximum(candidate + 0.5, s)).sub_(grad_a)
        torch.mul(delta, torch.addcmul(z, z, z, value=-1), out=grad_gate)
        torch.mul(grad_b, z, out=grad_candidate).mul_(g_derivative(candidate, s))
        return out

    def log_coefficients(self, u: Tensor) -> tuple[Tensor, Tensor]:
        gate, candidate = u.chunk(2, dim=-1)
        return -F.softplus(gate), log_g(candidate) - F.softplus(-gate)
