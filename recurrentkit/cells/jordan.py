"""Jordan network: the previous *output*, not the hidden state, is fed back."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import RecurrentCell
from .init import uniform_
from .kernels import JordanKernel, JordanLoop
from .registry import register_cell

_HIDDEN_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid}
_OUTPUT_ACTIVATIONS = {
    "identity": lambda z: z,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softmax": lambda z: torch.softmax(z, dim=-1),
}


class JordanState(NamedTuple):
    y: Tensor


@register_cell("jordan")
class JordanCell(RecurrentCell):
    """Jordan (1986) network::

        h_t = act(W x_t + b_ih + U y_{t-1})
        y_t = g(V h_t + c)

    (``b_ih`` is ``bias_ih`` and ``c`` is ``bias_ho``; there is no ``b_hh``.)

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
    kernel = JordanKernel  # training (not with a softmax output): JordanLoop's hand-written backward

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


__all__ = ["JordanCell", "JordanLoop", "JordanState"]
