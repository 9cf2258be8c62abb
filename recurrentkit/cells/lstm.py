"""Long short-term memory cell, with optional peepholes, layer normalisation and output projection (LSTMP)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import RecurrentCell
from .init import init_recurrent_, uniform_
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

    def _gate_norm(self, z: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        shape = z.shape
        z = F.layer_norm(z.view(*shape[:-1], 4, self.hidden_size), (self.hidden_size,))
        return (z * weight + bias).view(shape)

    def project_input(self, x: Tensor) -> Tensor:
        """``W x + b_ih + b_hh`` (layer-normalised ``W x`` with ``layer_norm``): both biases are hoisted."""
        if self.layer_norm:
            z = self._gate_norm(F.linear(x, self.weight_ih), self.ln_ih_weight, self.ln_ih_bias)
            z = z if self.bias_ih is None else z + self.bias_ih
        else:
            z = F.linear(x, self.weight_ih, self.bias_ih)
        return z if self.bias_hh is None else z + self.bias_hh

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        c = state.c
        if self.layer_norm:
            r_t = self._gate_norm(r_t, self.ln_hh_weight, self.ln_hh_bias)
        i, f, g, o = (u_t + r_t).chunk(4, dim=-1)
        if self.peepholes:
            i = torch.addcmul(i, self.peephole_i, c)
            f = torch.addcmul(f, self.peephole_f, c)
        c = torch.addcmul(torch.sigmoid(f) * c, torch.sigmoid(i), torch.tanh(g))
        if self.peepholes:
            o = torch.addcmul(o, self.peephole_o, c)
        h = torch.sigmoid(o) * torch.tanh(self.ln_c(c) if self.layer_norm else c)
        if self.weight_hr is not None:
            h = F.linear(h, self.weight_hr)
        return h, LSTMState(h, c)

    def forward_sequence(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """The hoisted loop; when training without layer norm or projection, with the backward of :class:`LSTMLoop`."""
        # layer norm keeps the generic HoistedLoop: a hand-written LN backward measured no faster (1.71x vs 1.68x)
        if (not torch.is_grad_enabled() or torch.compiler.is_compiling() or self.layer_norm
                or self.weight_hr is not None):
            return super().forward_sequence(x, state)
        peepholes = (self.peephole_i, self.peephole_f, self.peephole_o) if self.peepholes else (None, None, None)
        outputs, h, c = LSTMLoop.apply(self.project_input(x), state.h, state.c, self.weight_hh, *peepholes)
        return outputs, LSTMState(h, c)

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


class LSTMLoop(torch.autograd.Function):
    """The LSTM (optionally with peepholes) over a whole sequence, with a hand-written backward.

    ``u`` [T, B, 4H] holds ``W x_t + b`` for the gates ``i, f, g, o``. Backward per step (``σ' = s(1-s)``)::

        do = dh ⊙ tanh(c_t);  dc += dh ⊙ o ⊙ (1 - tanh²(c_t)) + (do ⊙ σ'_o) ⊙ p_o
        dz = [dc ⊙ g ⊙ σ'_i, dc ⊙ c_{t-1} ⊙ σ'_f, dc ⊙ i ⊙ (1-g²), do ⊙ σ'_o]
        dc ← dc ⊙ f + dz_i ⊙ p_i + dz_f ⊙ p_f;  dh ← dz U

    and ``dU``, the peephole gradients and ``du = dz`` are batched over all steps.
    """

    @staticmethod
    def forward(ctx, u: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, p_i: Tensor | None, p_f: Tensor | None,
                p_o: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        steps, hidden = u.shape[0], c.shape[-1]
        gates = torch.empty_like(u)  # activated i, f, g, o
        cells = u.new_empty(steps + 1, *c.shape)
        tanh_cells = u.new_empty(steps, *c.shape)
        outputs = u.new_empty(steps, *h.shape)
        cells[0] = c
        weight_t = weight_hh.t()
        peep = p_i is not None
        h0 = h
        for t in range(steps):
            z = torch.addmm(u[t], h, weight_t)
            if peep:
                z[:, :hidden].addcmul_(p_i, c)
                z[:, hidden:2 * hidden].addcmul_(p_f, c)
            i, f, g, o = gates[t].chunk(4, dim=-1)
            torch.sigmoid(z[:, :2 * hidden], out=gates[t, :, :2 * hidden])
            torch.tanh(z[:, 2 * hidden:3 * hidden], out=g)
            c = torch.addcmul(f * c, i, g, out=cells[t + 1])
            if peep:
                z[:, 3 * hidden:].addcmul_(p_o, c)
            torch.sigmoid(z[:, 3 * hidden:], out=o)
            h = torch.mul(o, torch.tanh(c, out=tanh_cells[t]), out=outputs[t])
        ctx.save_for_backward(h0, weight_hh, p_i, p_f, p_o, gates, cells, tanh_cells, outputs)
        return outputs, h.clone(), c.clone()

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_h: Tensor, grad_c: Tensor):
        h0, weight_hh, p_i, p_f, p_o, gates, cells, tanh_cells, outputs = ctx.saved_tensors
        steps, hidden = gates.shape[0], cells.shape[-1]
        peep = p_i is not None
        sig_d = gates * (1 - gates)  # σ' for i, f, o (the g block is overwritten below)
        sig_d[..., 2 * hidden:3 * hidden] = 1 - gates[..., 2 * hidden:3 * hidden].square()
        grad_z = torch.empty_like(gates)
        dh, dc = grad_h, grad_c
        for t in range(steps - 1, -1, -1):
            dh = dh + grad_outputs[t]
            i, f, g, o = gates[t].chunk(4, dim=-1)
            dz_i, dz_f, dz_g, dz_o = grad_z[t].chunk(4, dim=-1)
            d_i, d_f, d_g, d_o = sig_d[t].chunk(4, dim=-1)
            tanh_c = tanh_cells[t]
            torch.mul(torch.mul(dh, tanh_c), d_o, out=dz_o)
            dc = dc + dh * o * (1 - tanh_c.square())
            if peep:
                dc = dc.addcmul_(dz_o, p_o)
            torch.mul(dc * g, d_i, out=dz_i)
            torch.mul(dc * cells[t], d_f, out=dz_f)
            torch.mul(dc * i, d_g, out=dz_g)
            dc = dc * f
            if peep:
                dc.addcmul_(dz_i, p_i).addcmul_(dz_f, p_f)
            dh = torch.mm(grad_z[t], weight_hh)
        grad_weight = None
        if ctx.needs_input_grad[3]:
            previous = torch.cat([h0.unsqueeze(0), outputs[:-1]])
            grad_weight = torch.mm(grad_z.flatten(0, 1).t(), previous.flatten(0, 1))
        grad_p = [None, None, None]
        if peep:
            dz_i, dz_f, _, dz_o = grad_z.chunk(4, dim=-1)
            grad_p = [(dz_i * cells[:-1]).sum((0, 1)), (dz_f * cells[:-1]).sum((0, 1)), (dz_o * cells[1:]).sum((0, 1))]
        return grad_z, dh, dc, grad_weight, *grad_p

