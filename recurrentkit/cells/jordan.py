"""Jordan network: the previous *output*, not the hidden state, is fed back."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import RecurrentCell
from .init import uniform_
from .registry import register_cell

_HIDDEN_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
_OUTPUT_ACTIVATIONS = {
    "identity": lambda z: z,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}


# derivative of each activation written in terms of its output a = f(z)
_DERIVATIVES = {
    "tanh": lambda a: 1 - a.square(),
    "sigmoid": lambda a: a * (1 - a),
    "relu": lambda a: (a > 0).to(a.dtype),
    "identity": None,
}
_FUNCTIONS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": None,
              "relu": lambda z, out: torch.clamp(z, min=0, out=out)}


class JordanState(NamedTuple):
    y: Tensor


@register_cell("jordan")
class JordanCell(RecurrentCell):
    """Jordan (1986) network::

        h_t = act(W x_t + b_ih + U y_{t-1} + b_hh)
        y_t = g(V h_t + c)

    The cell owns the output layer ``V`` (``weight_ho``, ``bias_ho``) because its output is what is fed back;
    ``output_size`` defaults to ``hidden_size``. For training with teacher forcing (the true previous target fed
    back instead of ``y_{t-1}``) use :meth:`teacher_forced`, which needs no time loop.

    Args:
        output_size: size of ``y_t`` (and of the feedback).
        nonlinearity: hidden activation ``act``: ``"tanh"``, ``"relu"`` or ``"sigmoid"``.
        output_activation: ``g``: ``"identity"``, ``"tanh"``, ``"sigmoid"`` or ``"softmax"``.
    """

    feedback = "output"
    state_type = JordanState

    def __init__(self, input_size: int, hidden_size: int, output_size: int | None = None,
                 nonlinearity: str = "tanh", output_activation: str = "tanh", bias: bool = True) -> None:
        super().__init__(input_size, hidden_size)
        if nonlinearity not in _HIDDEN_ACTIVATIONS:
            raise ValueError(f"nonlinearity must be one of {sorted(_HIDDEN_ACTIVATIONS)}, got {nonlinearity!r}")
        if output_activation not in _OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {sorted(_OUTPUT_ACTIVATIONS)}, "
                             f"got {output_activation!r}")
        out = int(output_size or hidden_size)
        self.nonlinearity, self.output_activation = nonlinearity, output_activation
        self.output_size = out
        self.state_size = (out,)
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, out))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size)) if bias else None
        self.weight_ho = nn.Parameter(torch.empty(out, hidden_size))
        self.bias_ho = nn.Parameter(torch.empty(out)) if bias else None
        self._act = _HIDDEN_ACTIVATIONS[nonlinearity]
        self._out = _OUTPUT_ACTIVATIONS[output_activation]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for p in self.parameters():
            uniform_(p, self.hidden_size)

    def project_input(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: JordanState) -> tuple[Tensor, JordanState]:
        h = self._act(u_t + r_t)
        y = self._out(F.linear(h, self.weight_ho, self.bias_ho))
        return y, JordanState(y)

    def forward_sequence(self, x: Tensor, state: JordanState) -> tuple[Tensor, JordanState]:
        """The hoisted loop; when training, with the hand-written backward of :class:`JordanLoop`."""
        if (not torch.is_grad_enabled() or torch.compiler.is_compiling()
                or self.output_activation not in _DERIVATIVES or self.nonlinearity not in _DERIVATIVES):
            return super().forward_sequence(x, state)
        bias_ho = self.bias_ho if self.bias_ho is not None else self.weight_ho.new_zeros(self.output_size)
        outputs, y = JordanLoop.apply(self.project_input(x), state.y, self.weight_hh, self.weight_ho, bias_ho,
                                      self.nonlinearity, self.output_activation)
        return outputs, JordanState(y)

    def teacher_forced(self, x: Tensor, targets: Tensor, state: JordanState | None = None
                       ) -> tuple[Tensor, JordanState]:
        """Outputs for ``x`` [T, B, I] when the true ``targets`` [T, B, output_size] are fed back.

        Step ``t`` sees ``targets[t-1]`` (``state.y`` at ``t = 0``); the returned state holds ``targets[-1]``.
        """
        if targets.shape[:2] != x.shape[:2] or targets.shape[-1] != self.output_size:
            raise ValueError(f"targets must be [T, B, {self.output_size}] matching x {tuple(x.shape)}, "
                             f"got {tuple(targets.shape)}")
        if state is None:
            state = self.initial_state(x.shape[1], device=x.device, dtype=x.dtype)
        fed_back = torch.cat([state.y.unsqueeze(0), targets[:-1]], dim=0)
        h = self._act(self.project_input(x) + F.linear(fed_back, self.weight_hh))
        y = self._out(F.linear(h, self.weight_ho, self.bias_ho))
        return y, JordanState(targets[-1])

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, output_size={self.output_size}, "
                f"output_activation={self.output_activation!r}")


class JordanLoop(torch.autograd.Function):
    """``h_t = act(u_t + y_{t-1} Uᵀ)``, ``y_t = g(h_t Vᵀ + c)`` over a whole sequence, with a hand-written backward.

    Per step backward: ``dz2 = (g_t + dy) ⊙ g'``, ``dz1 = (dz2 V) ⊙ act'``, ``dy = dz1 U``; the gradients of
    ``U``, ``V`` and ``c`` are single matmuls/sums over all steps.
    """

    @staticmethod
    def forward(ctx, u: Tensor, y: Tensor, weight_hh: Tensor, weight_ho: Tensor, bias_ho: Tensor, act: str,
                out: str) -> tuple[Tensor, Tensor]:
        steps = u.shape[0]
        hidden = torch.empty_like(u)
        outputs = u.new_empty(steps, *y.shape)
        weight_hh_t, weight_ho_t = weight_hh.t(), weight_ho.t()
        act_fn, out_fn = _FUNCTIONS[act], _FUNCTIONS[out]
        y0 = y
        for t in range(steps):
            h = act_fn(torch.addmm(u[t], y, weight_hh_t), out=hidden[t])
            y = torch.addmm(bias_ho, h, weight_ho_t, out=outputs[t])
            if out_fn is not None:
                y = out_fn(y, out=outputs[t])
        ctx.act, ctx.out = act, out
        ctx.save_for_backward(y0, weight_hh, weight_ho, hidden, outputs)
        return outputs, y.clone()

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_y: Tensor):
        y0, weight_hh, weight_ho, hidden, outputs = ctx.saved_tensors
        act_d, out_d = _DERIVATIVES[ctx.act](hidden), _DERIVATIVES[ctx.out]
        out_d = out_d(outputs) if out_d is not None else None
        grad_z2, grad_z1 = torch.empty_like(outputs), torch.empty_like(hidden)
        dy = grad_y
        for t in range(hidden.shape[0] - 1, -1, -1):
            dy = dy + grad_outputs[t]
            dz2 = torch.mul(dy, out_d[t], out=grad_z2[t]) if out_d is not None else grad_z2[t].copy_(dy)
            dz1 = torch.mul(torch.mm(dz2, weight_ho), act_d[t], out=grad_z1[t])
            dy = torch.mm(dz1, weight_hh)
        previous = torch.cat([y0.unsqueeze(0), outputs[:-1]])
        flat_z1, flat_z2 = grad_z1.flatten(0, 1), grad_z2.flatten(0, 1)
        grad_hh = torch.mm(flat_z1.t(), previous.flatten(0, 1)) if ctx.needs_input_grad[2] else None
        grad_ho = torch.mm(flat_z2.t(), hidden.flatten(0, 1)) if ctx.needs_input_grad[3] else None
        grad_bias = flat_z2.sum(0) if ctx.needs_input_grad[4] else None
        return grad_z1, dy, grad_hh, grad_ho, grad_bias, None, None
