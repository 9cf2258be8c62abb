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
        """
        return None

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: State) -> tuple[Tensor, State]:
        """The step given ``r_t = state[0] @ recurrent_weight().T``; only for cells with a recurrent weight."""
        raise NotImplementedError

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Run the whole sequence ``x`` [T, B, I] from ``state``: the input projection is hoisted out of time."""
        u = self.project_input(x)
        weight = self.recurrent_weight()
        if weight is not None and torch.is_grad_enabled() and not torch.compiler.is_compiling():
            named = [(n, p) for n, p in self.named_parameters() if p is not weight]
            params = [p for _, p in named]
            if any(t.requires_grad for t in (u, weight, *state, *params)):
                meta = (len(state), tuple(n for n, _ in named))
                outputs, *final = HoistedLoop.apply(self, meta, u, weight, *state, *params)
                return outputs, self.state_type(*final)
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


class HoistedLoop(torch.autograd.Function):
    """The time loop of a cell with a :meth:`~RecurrentCell.recurrent_weight`, with a hand-scheduled backward.

    Forward runs the steps without building a graph and keeps each step's inputs. Backward walks time in reverse,
    re-running only the cheap pointwise part of each step under autograd, and collects ``dL/d(state[0] @ W.T)`` of
    every step so that ``dL/dW`` is a single ``[G, T*B] x [T*B, S]`` matmul at the end.
    """

    @staticmethod
    def forward(ctx, cell: RecurrentCell, meta: tuple[int, tuple[str, ...]], u: Tensor, weight: Tensor, *rest: Tensor):
        num_fields, ctx.names = meta
        state = cell.state_type(*rest[:num_fields])
        weight_t = weight.t()
        states, recurrent, outputs = [], [], []
        for u_t in u.unbind(0):
            r_t = torch.mm(state[0], weight_t)
            states.append(state)
            recurrent.append(r_t)
            y_t, state = cell.pointwise(u_t, r_t, state)
            outputs.append(y_t)
        ctx.cell, ctx.num_fields = cell, num_fields
        ctx.states, ctx.recurrent = states, recurrent
        ctx.save_for_backward(u, weight, *rest[num_fields:])
        return (torch.stack(outputs), *state)

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, *grad_state: Tensor):
        cell, num_fields = ctx.cell, ctx.num_fields
        u, weight, *params = ctx.saved_tensors
        trainable = [p for p, need in zip(params, ctx.needs_input_grad[4 + num_fields:]) if need]
        current = dict(cell.named_parameters())
        names = ctx.names
        if any(current.get(n) is not p for n, p in zip(names, params)):  # e.g. under torch.func.functional_call
            with torch.nn.utils.stateless._reparametrize_module(cell, dict(zip(names, params))):
                return HoistedLoop._backward(ctx, cell, u, weight, params, trainable, grad_outputs, grad_state)
        return HoistedLoop._backward(ctx, cell, u, weight, params, trainable, grad_outputs, grad_state)

    @staticmethod
    def _backward(ctx, cell, u, weight, params, trainable, grad_outputs, grad_state):
        num_fields = ctx.num_fields
        grad_state = [torch.zeros_like(s) if g is None else g for g, s in zip(grad_state, ctx.states[-1])]
        steps = u.shape[0]
        grad_u = torch.empty_like(u) if ctx.needs_input_grad[2] else None
        grad_r = torch.empty(steps, *ctx.recurrent[0].shape, dtype=u.dtype, device=u.device)
        grad_params: list[Tensor | None] = [None] * len(trainable)  # None: not used by pointwise (e.g. weight_ih)
        for t in range(steps - 1, -1, -1):
            with torch.enable_grad():
                u_t = u[t].detach().requires_grad_()
                r_t = ctx.recurrent[t].detach().requires_grad_()
                prev = [s.detach().requires_grad_() for s in ctx.states[t]]
                y_t, new = cell.pointwise(u_t, r_t, cell.state_type(*prev))
                grads = torch.autograd.grad([y_t, *new], [u_t, r_t, *prev, *trainable],
                                            [grad_outputs[t], *grad_state], allow_unused=True)
            if grad_u is not None:
                grad_u[t] = grads[0] if grads[0] is not None else 0.0
            grad_r[t] = grads[1]
            grad_state = [torch.zeros_like(p) if g is None else g for g, p in zip(grads[2:2 + num_fields], prev)]
            grad_state[0] = torch.addmm(grad_state[0], grads[1], weight)
            for index, g in enumerate(grads[2 + num_fields:]):
                if g is not None:
                    grad_params[index] = g if grad_params[index] is None else grad_params[index] + g
        grad_weight = None
        if ctx.needs_input_grad[3]:
            fed_back = torch.stack([s[0] for s in ctx.states])
            grad_weight = torch.mm(grad_r.flatten(0, 1).t(), fed_back.flatten(0, 1))
        trainable_grads = iter(grad_params)
        grad_rest = [next(trainable_grads) if need else None for need in ctx.needs_input_grad[4 + num_fields:]]
        return None, None, grad_u, grad_weight, *grad_state, *grad_rest
