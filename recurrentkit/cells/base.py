"""The cell protocol: a cell knows one time step, the :class:`~recurrentkit.Recurrent` layer owns time.

A cell splits its update into two parts so the layer can run it fast:

* ``project_input(x)`` — everything that depends only on the input, computed for the whole sequence
  ``[T, B, I]`` in one matmul (hoisted out of the time loop);
* ``step(u_t, state)`` — the recurrent part, given one time step of that projection.

State is a ``NamedTuple`` of tensors (``LSTMState(h, c)``), so it documents itself and can be detached,
masked or indexed with a comprehension over its fields.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn

State = NamedTuple  # a cell's state: a NamedTuple whose fields are tensors shaped [B, size]


class RecurrentCell(nn.Module):
    """Base class of every cell.

    Subclasses set ``state_size`` (one entry per state field) and ``output_size`` in ``__init__`` and implement
    :meth:`project_input` and :meth:`step`. A cell whose computation is exactly one of ``torch.nn.RNN``,
    ``torch.nn.LSTM`` or ``torch.nn.GRU`` sets :attr:`fused_mode` so the layer can run the fused kernel on the
    cell's own parameters.

    Class attributes:
        feedback: ``"state"`` when the hidden state is fed back (Elman, LSTM, ...), ``"output"`` when the previous
            output is (Jordan).
        trainable_recurrence: ``False`` when the recurrent weights are fixed buffers (echo-state reservoir).
        state_type: the ``NamedTuple`` class of the cell's state.
    """

    feedback: ClassVar[str] = "state"
    trainable_recurrence: ClassVar[bool] = True
    state_type: ClassVar[type] = None  # type: ignore[assignment]

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size} and {hidden_size}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.state_size: tuple[int, ...] = (self.hidden_size,)
        self.output_size: int = self.hidden_size

    # --- the protocol -------------------------------------------------------------------------------------------
    def initial_state(
        self, batch_size: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """Zeros, one ``[batch_size, size]`` tensor per state field."""
        ref = next(iter(self.parameters()), None)
        if ref is None:
            ref = next(iter(self.buffers()), None)
        device = device if device is not None else (ref.device if ref is not None else None)
        dtype = dtype if dtype is not None else (ref.dtype if ref is not None else None)
        zeros = [torch.zeros(batch_size, size, device=device, dtype=dtype) for size in self.state_size]
        return self.state_type(*zeros)

    def project_input(self, x: Tensor) -> Tensor:
        """Input part of the update for a whole sequence: ``[T, B, input_size] -> [T, B, *]``."""
        raise NotImplementedError

    def step(self, u_t: Tensor, state: State) -> tuple[Tensor, State]:
        """One recurrent step given ``u_t = project_input(x)[t]``; returns ``(y_t, new_state)``."""
        raise NotImplementedError

    # --- optional fast path ---------------------------------------------------------------------------------------
    @property
    def fused_mode(self) -> str | None:
        """``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"`` when ``torch.nn`` computes exactly this cell."""
        return None

    def fused_weights(self) -> list[Tensor]:
        """The parameters in the order the fused kernel expects (``weight_ih, weight_hh, bias_ih, bias_hh[, w_hr]``)."""
        raise NotImplementedError

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Run the whole sequence ``x`` [T, B, I] from ``state``; the default is the hoisted Python loop."""
        u = self.project_input(x)
        outputs = []
        for u_t in u.unbind(0):
            y_t, state = self.step(u_t, state)
            outputs.append(y_t)
        return torch.stack(outputs), state

    def forward(self, x_t: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One step on raw input ``x_t`` [B, I], for use outside a :class:`Recurrent` layer."""
        if state is None:
            state = self.initial_state(x_t.shape[0], device=x_t.device, dtype=x_t.dtype)
        return self.step(self.project_input(x_t.unsqueeze(0)).squeeze(0), state)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


def detach_state(state: Any) -> Any:
    """Detach every tensor in a (possibly nested) state, e.g. between truncated-BPTT windows."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):
        return type(state)(*(detach_state(s) for s in state))
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"cannot detach a state of type {type(state).__name__}")


def map_state(fn, *states: Any) -> Any:
    """Apply ``fn`` tensor-wise across one or more states of the same structure."""
    first = states[0]
    if isinstance(first, Tensor):
        return fn(*states)
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(map_state(fn, *parts) for parts in zip(*states)))
    if isinstance(first, (list, tuple)):
        return type(first)(map_state(fn, *parts) for parts in zip(*states))
    raise TypeError(f"cannot map over a state of type {type(first).__name__}")
