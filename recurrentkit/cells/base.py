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

from .kernels import HoistedLoop, SequenceKernel, choose_path, records_grad, run_path

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
        kernel: a :class:`~recurrentkit.cells.kernels.SequenceKernel` subclass, the cell's own whole-sequence loop
            (e.g. a hand-written backward), or ``None``. The layer decides when to run it; the cell only declares it.
    """

    feedback: ClassVar[str] = "state"
    trainable_recurrence: ClassVar[bool] = True
    state_type: ClassVar[type] = None  # type: ignore[assignment]
    kernel: ClassVar[type[SequenceKernel] | None] = None

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
        """One recurrent step given ``u_t = project_input(x)[t]``; returns ``(y_t, new_state)``.

        The default serves cells with a :meth:`recurrent_weight`: ``pointwise(u_t, state[0] @ W.T, state)``.
        """
        weight = self.recurrent_weight()
        if weight is None:
            raise NotImplementedError(f"{type(self).__name__} must implement step() or recurrent_weight()+pointwise()")
        return self.pointwise(u_t, torch.mm(state[0], weight.t()), state)

    # --- optional fast path ---------------------------------------------------------------------------------------
    @property
    def fused_mode(self) -> str | None:
        """``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"`` when ``torch.nn`` computes exactly this cell."""
        return None

    def fused_weights(self) -> list[Tensor]:
        """The parameters in the order the fused kernel expects (``weight_ih, weight_hh, bias_ih, bias_hh[, w_hr]``)."""
        raise NotImplementedError

    # --- optional split step: lets the loop batch the recurrent weight's gradient ----------------------------------
    def recurrent_weight(self) -> Tensor | None:
        """The matrix ``W`` [G, S] of the step's one matmul on the fed-back signal ``state[0]``, or ``None``.

        A cell returning ``W`` implements :meth:`pointwise` so that
        ``step(u_t, state) == pointwise(u_t, state[0] @ W.T, state)``. Training then runs through
        :class:`HoistedLoop`, which computes ``dL/dW`` as one big matmul over all steps instead of one small one per
        step (the per-step ``[G, B] x [B, S]`` products dominate the backward pass of an autograd loop on CPU).
        The layer chooses that path; the cell only declares the weight.
        """
        return None

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: State) -> tuple[Tensor, State]:
        """The step given ``r_t = state[0] @ recurrent_weight().T``; only for cells with a recurrent weight."""
        raise NotImplementedError

    def forward_sequence(self, x: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]:
        """This cell alone over ``x`` [T, B, I] from ``state``, on the path :class:`~recurrentkit.Recurrent` would
        choose for it (the fused kernel aside; see :func:`~recurrentkit.cells.kernels.choose_path`). ``mask``
        [T, B] marks real steps: padded steps keep the state and give zero outputs.

        Not a hook: to give a cell a faster whole-sequence loop, declare :attr:`kernel`.
        """
        path = choose_path([self], grad=records_grad([self], x, [state]), fused=False)
        return run_path(path, self, x, state, mask)

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


__all__ = ["HoistedLoop", "RecurrentCell", "State", "detach_state", "map_state"]
