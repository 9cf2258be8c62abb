"""Long short-term memory cell, with optional peepholes, layer normalisation and output projection (LSTMP)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import RecurrentCell
from .init import init_recurrent_, uniform_
from .kernels import LSTMKernel, LSTMLoop
from .registry import register_cell


class LSTMState(NamedTuple):
    h: Tensor
    c: Tensor


@register_cell("lstm")
class LSTMCell(RecurrentCell):
    """LSTM (Hochreiter & Schmidhuber 1997, with forget gate), gate order ``i, f, g, o`` as in ``torch.nn.LSTM``::

        i_t = σ(W_i x_t + U_i h_{t-1} + p_i ⊙ c_{t-1} + b_i)
        f_t = σ(W_f x_t + U_f h_{t-1} + p_f ⊙ c_{t-1} + b_f)
        g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        o_t = σ(W_o x_t + U_o h_{t-1} + p_o ⊙ c_t + b_o)
        h_t = W_hr (o_t ⊙ tanh(c_t))                      # W_hr only with proj_size > 0

    Peephole terms ``p ⊙ c`` only with ``peepholes=True`` (Gers & Schmidhuber 2000). With ``layer_norm=True``
    (Ba et al. 2016) ``W x`` and ``U h`` are layer-normalised per gate and ``tanh(c_t)`` becomes
    ``tanh(LN(c_t))``. Without peepholes and layer norm the cell is exactly ``torch.nn.LSTM`` and runs on its
    fused kernel.

    Args:
        forget_bias: initial value of the forget-gate bias (put in ``bias_ih``; ``None`` keeps torch's init).
        peepholes: add the diagonal cell-to-gate connections ``p_i, p_f, p_o``.
        layer_norm: layer-normalise the gate pre-activations and the cell.
        proj_size: size of the recurrent projection ``W_hr`` (LSTMP, Sak et al. 2014); 0 disables it.
        init: hidden-to-hidden init, ``"uniform"`` (torch default) or ``"orthogonal"``.
    """

    state_type = LSTMState
    kernel = LSTMKernel  # training without layer norm or projection: LSTMLoop's hand-written backward

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, forget_bias: float | None = 1.0,
                 peepholes: bool = False, layer_norm: bool = False, proj_size: int = 0,
                 init: str = "uniform") -> None:
        super().__init__(input_size, hidden_size)
        if proj_size < 0 or proj_size >= hidden_size and proj_size != 0:
            raise ValueError(f"proj_size must be 0 or in [1, hidden_size), got {proj_size}")
        real_size = proj_size or hidden_size
        self.proj_size = proj_size
        self.peepholes = peepholes
        self.layer_norm = layer_norm
        self.forget_bias = forget_bias
        self.init = init
        self.state_size = (real_size, hidden_size)
        self.output_size = real_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, real_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.weight_hr = nn.Parameter(torch.empty(proj_size, hidden_size)) if proj_size else None
        if peepholes:
            self.peephole_i = nn.Parameter(torch.empty(hidden_size))
            self.peephole_f = nn.Parameter(torch.empty(hidden_size))
            self.peephole_o = nn.Parameter(torch.empty(hidden_size))
        if layer_norm:
            self.ln_ih_weight = nn.Parameter(torch.ones(4, hidden_size))
            self.ln_ih_bias = nn.Parameter(torch.zeros(4, hidden_size))
            self.ln_hh_weight = nn.Parameter(torch.ones(4, hidden_size))
            self.ln_hh_bias = nn.Parameter(torch.zeros(4, hidden_size))
            self.ln_c = nn.LayerNorm(hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            if not name.startswith("ln"):
                uniform_(p, self.hidden_size)
        if self.init != "uniform":
            init_recurrent_(self.weight_hh, self.init, self.hidden_size, gates=4)
        if self.bias_ih is not None and self.forget_bias is not None:
            with torch.no_grad():
                self.bias_ih[self.hidden_size:2 * self.hidden_size].fill_(self.forget_bias)
                self.bias_hh[self.hidden_size:2 * self.hidden_size].zero_()

    def _gate_norm(self, z: Tensor) -> Tensor:
        """Layer norm of each gate's block of ``z`` ``[..., 4H]``, without the affine part (viewed ``[..., 4, H]``)."""
        return F.layer_norm(z.view(*z.shape[:-1], 4, self.hidden_size), (self.hidden_size,))

    def project_input(self, x: Tensor) -> Tensor:
        """``W x + b_ih + b_hh``; with ``layer_norm`` ``LN(W x) ⊙ γ_ih + β_ih + β_hh + b_ih + b_hh``: every term of
        the gate pre-activation that does not depend on ``h`` is hoisted here, so a step adds ``LN(U h) ⊙ γ_hh``."""
        if not self.layer_norm:
            z = F.linear(x, self.weight_ih, self.bias_ih)
            return z if self.bias_hh is None else z + self.bias_hh
        shift = self.ln_ih_bias + self.ln_hh_bias
        if self.bias_ih is not None:
            shift = shift + (self.bias_ih + self.bias_hh).view(4, self.hidden_size)
        z = torch.addcmul(shift, self._gate_norm(F.linear(x, self.weight_ih)), self.ln_ih_weight)
        return z.view(*x.shape[:-1], 4 * self.hidden_size)

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        c, hidden = state.c, self.hidden_size
        if self.layer_norm:  # u_t holds the β's (project_input)
            z = torch.addcmul(u_t.view(*u_t.shape[:-1], 4, hidden), self._gate_norm(r_t), self.ln_hh_weight)
            z = z.view(u_t.shape)
        else:
            z = u_t + r_t
        i, f, g, o = z.chunk(4, dim=-1)
        if self.peepholes:
            gate_i = torch.sigmoid(torch.addcmul(i, self.peephole_i, c))
            gate_f = torch.sigmoid(torch.addcmul(f, self.peephole_f, c))
        else:  # i and f are adjacent: one sigmoid for both
            gate_i, gate_f = torch.sigmoid(z[..., :2 * hidden]).chunk(2, dim=-1)
        c = torch.addcmul(gate_f * c, gate_i, torch.tanh(g))
        if self.peepholes:
            o = torch.addcmul(o, self.peephole_o, c)
        h = torch.sigmoid(o) * torch.tanh(self.ln_c(c) if self.layer_norm else c)
        if self.weight_hr is not None:
            h = F.linear(h, self.weight_hr)
        return h, LSTMState(h, c)

    @property
    def fused_mode(self) -> str | None:
        return None if (self.peepholes or self.layer_norm) else "LSTM"

    def fused_weights(self) -> list[Tensor]:
        weights = [self.weight_ih, self.weight_hh]
        if self.bias_ih is not None:
            weights += [self.bias_ih, self.bias_hh]
        if self.weight_hr is not None:
            weights.append(self.weight_hr)
        return weights

    def extra_repr(self) -> str:
        extras = [f"{k}={v}" for k, v in (("peepholes", self.peepholes), ("layer_norm", self.layer_norm),
                                          ("proj_size", self.proj_size)) if v]
        return ", ".join([f"{self.input_size}, {self.hidden_size}", *extras])


__all__ = ["LSTMCell", "LSTMLoop", "LSTMState"]
