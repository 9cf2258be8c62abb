"""Whole-sequence kernels, and the one place that chooses how a layer of cells runs over time.

A *kernel* runs a cell over a whole sequence faster than calling ``step`` ``T`` times under autograd. Every kernel
here takes the hoisted input projection ``u = cell.project_input(x)`` ``[T, B, *]``, the initial state, and an
optional ``mask`` ``[T, B]`` (``True`` at real steps, ``False`` at padding). Padded steps keep the state and give
zero outputs, so a padded batch takes the same kernel as a full one.

How a layer runs is decided once, by :func:`choose_path`, from what its cells *declare*:

* ``fused_mode`` / ``fused_weights()``: ``torch.nn`` computes exactly this cell (the fused kernel in ``nn/fused.py``);
* ``kernel``: a :class:`SequenceKernel` subclass, the cell's own hand-written whole-sequence loop;
* ``recurrent_weight()`` / ``pointwise()``: the recurrence is one matmul, so :class:`HoistedLoop` can train it.

Cells never check ``torch.is_grad_enabled()`` or compilation themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Optional

import numpy as np
import torch
from torch import Tensor

from .openblas import blas_threads
from .packed import StepProduct

if TYPE_CHECKING:
    from .base import RecurrentCell, State

PATHS = ("fused", "compiled", "kernel", "hoisted", "loop")
KERNEL_WHEN = ("grad", "no_grad", "always")


# --- the decision ----------------------------------------------------------------------------------------------------
def fused_mode_of(cells: Sequence[RecurrentCell]) -> str | None:
    """The common fused mode of a layer's cells (one per direction), or ``None`` when they can't share a kernel."""
    modes = {cell.fused_mode for cell in cells}
    if len(modes) != 1 or None in modes:
        return None
    shapes = {tuple(tuple(w.shape) for w in cell.fused_weights()) for cell in cells}
    return modes.pop() if len(shapes) == 1 else None


def records_grad(cells: Sequence[RecurrentCell], x: Tensor, states: Sequence[State]) -> bool:
    """Whether autograd will record this layer: grad mode is on and its input, state or a parameter needs a grad."""
    if not torch.is_grad_enabled():
        return False
    return (x.requires_grad or any(t.requires_grad for state in states for t in state)
            or any(p.requires_grad for cell in cells for p in cell.parameters()))


def kernel_applies(cell: RecurrentCell, grad: bool) -> bool:
    """Whether the cell's declared :attr:`~RecurrentCell.kernel` runs now (its ``when`` and ``supports(cell)``)."""
    kernel = type(cell).kernel
    if kernel is None:
        return False
    if kernel.when != "always" and (kernel.when == "grad") != grad:
        return False
    return kernel.supports(cell)


# HoistedLoop saves one small weight-gradient GEMM per step but pays one autograd call per step in its backward. On
# CPU that only pays off for a large recurrent weight: measured with benchmarks/hoisted_threshold.py (1 thread,
# process clock, loaded 2-core machine, T=35, B=20 and 64; elman, simplified_gru, gru at H=200..650) it takes
# 1.04-1.51x the step loop's time up to 270k weight elements, and 0.73-1.08x (a tie, or faster) from 405k on.
HOISTED_MIN_WEIGHT = 500_000


def hoisted_pays(cell: RecurrentCell) -> bool:
    """Whether :class:`HoistedLoop` is worth it: the cell has a ``recurrent_weight()`` of at least
    :data:`HOISTED_MIN_WEIGHT` elements, or one off the CPU (where the threshold was not measured)."""
    weight = cell.recurrent_weight()
    return weight is not None and (weight.device.type != "cpu" or weight.numel() >= HOISTED_MIN_WEIGHT)


def choose_path(cells: Sequence[RecurrentCell], *, grad: bool, fused: bool = True, compile: bool = False) -> str:
    """How one layer (its cells: one per direction) runs over time; the first that applies:

    1. ``"fused"``: ``fused`` is allowed (``Recurrent(force_loop=False)``) and the cells share a ``fused_mode`` and
       weight shapes: the kernel ``torch.nn.RNN/LSTM/GRU`` call (padded batches packed);
    2. ``"compiled"``: ``compile=True``: the step loop under ``torch.compile`` (cached per layer and shape);
    3. ``"loop"`` while the caller is being compiled (``torch.compiler.is_compiling()``): the compiler traces steps;
    4. ``"kernel"``: every cell's declared :class:`SequenceKernel` applies (its ``when`` matches ``grad`` and its
       ``supports(cell)`` is true): the cell's own whole-sequence loop;
    5. ``"hoisted"``: ``grad`` (autograd records) and every cell has a ``recurrent_weight()`` large enough to pay
       (:func:`hoisted_pays`): :class:`HoistedLoop`, whose backward computes that weight's gradient in one matmul;
    6. ``"loop"``: ``step`` once per time step, under autograd.

    Every path but ``"fused"`` hoists ``project_input`` out of the time loop, and every path takes padded batches.
    """
    if fused and fused_mode_of(cells) is not None:
        return "fused"
    if compile:
        return "compiled"
    if torch.compiler.is_compiling():
        return "loop"
    if all(kernel_applies(cell, grad) for cell in cells):
        return "kernel"
    if grad and all(hoisted_pays(cell) for cell in cells):
        return "hoisted"
    return "loop"


def run_path(path: str, cell: RecurrentCell, x: Tensor, state: State, mask: Tensor | None = None
             ) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x`` ``[T, B, I]`` from ``state`` on ``path`` (``"kernel"``, ``"hoisted"`` or ``"loop"``)."""
    u = cell.project_input(x)
    if path == "kernel":
        return type(cell).kernel.run(cell, u, state, mask)
    if path == "hoisted":
        return hoisted_loop(cell, u, state, mask)
    if path in ("loop", "compiled"):
        return step_loop(cell, u, state, mask)
    raise ValueError(f"run_path runs 'kernel', 'hoisted' or 'loop', got {path!r} (the layer runs 'fused')")


# --- the declaration -------------------------------------------------------------------------------------------------
class SequenceKernel:
    """A cell's own whole-sequence loop. A cell declares one with the class attribute ``kernel = MyKernel``.

    Class attributes and methods a kernel defines:
        when: ``"grad"`` (only when autograd records: a loop with a hand-written backward), ``"no_grad"`` (only when it
            does not: a loop outside autograd) or ``"always"``.
        supports(cell): whether this cell's options allow the kernel (e.g. the LSTM's without layer norm); default
            ``True``.
        run(cell, u, state, mask): outputs ``[T, B, output_size]`` and the final state, from
            ``u = cell.project_input(x)``; with ``mask`` ``[T, B]`` (``None``: no padding) padded steps keep the
            state and give zero outputs. It must compute exactly what the ``step`` loop computes.
    """

    when: ClassVar[str] = "grad"

    @classmethod
    def supports(cls, cell: RecurrentCell) -> bool:
        return True

    @classmethod
    def run(cls, cell: RecurrentCell, u: Tensor, state: State, mask: Tensor | None) -> tuple[Tensor, State]:
        raise NotImplementedError(f"{cls.__name__}.run(cell, u, state, mask)")


def zero_padded(outputs: Tensor, mask: Tensor | None) -> Tensor:
    """``outputs`` ``[T, B, F]`` with the padded steps (``mask`` false) set to zero."""
    if mask is None:
        return outputs
    return torch.where(mask.unsqueeze(-1), outputs, outputs.new_zeros(()))


def _keep(new: State, old: State, keep: Tensor | None) -> State:
    """``new`` where ``keep`` [B, 1] is true, ``old`` elsewhere (padded rows keep their state)."""
    if keep is None:
        return new
    return type(new)(*(torch.where(keep, n, o) for n, o in zip(new, old)))


def _float_mask(mask: Tensor | None, like: Tensor) -> Tensor | None:
    return None if mask is None else mask.unsqueeze(-1).to(like.dtype)


# --- the step loop ---------------------------------------------------------------------------------------------------
def step_loop(cell: RecurrentCell, u: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]:
    """``step`` once per time step under autograd; every cell can take it."""
    outputs = []
    for t, u_t in enumerate(u.unbind(0)):
        y_t, new = cell.step(u_t, state)
        if mask is not None:
            keep = mask[t].unsqueeze(-1)
            new = _keep(new, state, keep)
            y_t = torch.where(keep, y_t, y_t.new_zeros(()))
        state = new
        outputs.append(y_t)
    return torch.stack(outputs), state


# --- the generic kernel for cells with a recurrent weight ------------------------------------------------------------
def hoisted_loop(cell: RecurrentCell, u: Tensor, state: State, mask: Tensor | None = None) -> tuple[Tensor, State]:
    """Run a cell with a :meth:`~RecurrentCell.recurrent_weight` through :class:`HoistedLoop`."""
    weight = cell.recurrent_weight()
    named = [(n, p) for n, p in cell.named_parameters() if p is not weight]
    meta = (len(state), tuple(n for n, _ in named))
    outputs, *final = HoistedLoop.apply(cell, meta, mask, u, weight, *state, *(p for _, p in named))
    return zero_padded(outputs, mask), cell.state_type(*final)


class HoistedLoop(torch.autograd.Function):
    """The time loop of a cell with a :meth:`~RecurrentCell.recurrent_weight`, with a hand-scheduled backward.

    Forward runs the recurrent matmuls without a graph and records only each step's pointwise graph (on detached
    leaves). Backward walks time in reverse, calling autograd on one step's pointwise graph at a time (nothing is
    recomputed), and collects ``dL/d(state[0] @ W.T)`` of
    every step so that ``dL/dW`` is a single ``[G, T*B] x [T*B, S]`` matmul at the end. With a ``mask`` padded rows
    keep their state (their outputs are zeroed by the caller).
    """

    @staticmethod
    def forward(ctx, cell: RecurrentCell, meta: tuple[int, tuple[str, ...]], mask: Tensor | None, u: Tensor,
                weight: Tensor, *rest: Tensor):
        num_fields = meta[0]  # meta[1]: the parameter names (the step graphs hold the parameters themselves)
        state = cell.state_type(*rest[:num_fields])
        product = StepProduct(weight, u.shape[1], u.shape[0], u.dtype)
        states, recurrent, outputs, graphs = [], [], [], []
        for t, u_t in enumerate(u.unbind(0)):
            r_t = product.mm(state[0])
            states.append(state)
            recurrent.append(r_t)
            with torch.enable_grad():  # the pointwise graph of each step, kept for backward (no recomputation)
                u_leaf, r_leaf = u_t.detach().requires_grad_(), r_t.detach().requires_grad_()
                prev = cell.state_type(*(s.detach().requires_grad_() for s in state))
                y_t, new = cell.pointwise(u_leaf, r_leaf, prev)
                new = _keep(new, prev, None if mask is None else mask[t].unsqueeze(-1))
            graphs.append((u_leaf, r_leaf, prev, y_t, new))
            state = cell.state_type(*(n.detach() for n in new))
            outputs.append(y_t.detach())
        ctx.num_fields = num_fields
        ctx.states, ctx.recurrent, ctx.graphs = states, recurrent, graphs
        ctx.save_for_backward(u, weight, *rest[num_fields:])
        return (torch.stack(outputs), *state)

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, *grad_state: Tensor):
        # the step graphs hold the parameters forward saw (under torch.func.functional_call too): nothing re-runs
        num_fields = ctx.num_fields
        u, weight, *params = ctx.saved_tensors
        trainable = [p for p, need in zip(params, ctx.needs_input_grad[5 + num_fields:]) if need]
        grad_state = [torch.zeros_like(s) if g is None else g for g, s in zip(grad_state, ctx.states[-1])]
        steps = u.shape[0]
        grad_u = torch.empty_like(u) if ctx.needs_input_grad[3] else None
        grad_r = torch.empty(steps, *ctx.recurrent[0].shape, dtype=u.dtype, device=u.device)
        grad_params: list[Tensor | None] = [None] * len(trainable)  # None: not used by pointwise (e.g. weight_ih)
        for t in range(steps - 1, -1, -1):
            u_t, r_t, prev, y_t, new = ctx.graphs[t]
            with torch.enable_grad():
                grads = torch.autograd.grad([y_t, *new], [u_t, r_t, *prev, *trainable],
                                            [grad_outputs[t], *grad_state], allow_unused=True, retain_graph=True)
            if grad_u is not None:
                grad_u[t] = grads[0] if grads[0] is not None else 0.0
            grad_r[t] = grads[1]
            grad_state = [torch.zeros_like(p) if g is None else g for g, p in zip(grads[2:2 + num_fields], prev)]
            grad_state[0] = torch.addmm(grad_state[0], grads[1], weight)
            for index, g in enumerate(grads[2 + num_fields:]):
                if g is not None:
                    grad_params[index] = g if grad_params[index] is None else grad_params[index] + g
        grad_weight = None
        if ctx.needs_input_grad[4]:
            fed_back = torch.stack([s[0] for s in ctx.states])
            grad_weight = torch.mm(grad_r.flatten(0, 1).t(), fed_back.flatten(0, 1))
        trainable_grads = iter(grad_params)
        grad_rest = [next(trainable_grads) if need else None for need in ctx.needs_input_grad[5 + num_fields:]]
        return None, None, None, grad_u, grad_weight, *grad_state, *grad_rest


# --- hand-written kernels of the built-in cells ---------------------------------------------------------------------
class LSTMLoop(torch.autograd.Function):
    """The LSTM (optionally with peepholes) over a whole sequence, with a hand-written backward.

    ``u`` [T, B, 4H] holds ``W x_t + b`` for the gates ``i, f, g, o``. Backward per step (``σ' = s(1-s)``)::

        do = dh ⊙ tanh(c_t);  dc += dh ⊙ o ⊙ (1 - tanh²(c_t)) + (do ⊙ σ'_o) ⊙ p_o
        dz = [dc ⊙ g ⊙ σ'_i, dc ⊙ c_{t-1} ⊙ σ'_f, dc ⊙ i ⊙ (1-g²), do ⊙ σ'_o]
        dc ← dc ⊙ f + dz_i ⊙ p_i + dz_f ⊙ p_f;  dh ← dz U

    and ``dU``, the peephole gradients and ``du = dz`` are batched over all steps. The outputs are the hidden states
    ``h_t``; with a ``mask`` a padded row keeps ``(h, c)`` and its gradient passes straight through the step.
    """

    @staticmethod
    def forward(ctx, u: Tensor, h: Tensor, c: Tensor, weight_hh: Tensor, p_i: Tensor | None, p_f: Tensor | None,
                p_o: Tensor | None, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        steps, hidden = u.shape[0], c.shape[-1]
        gates = torch.empty_like(u)  # activated i, f, g, o
        cells = u.new_empty(steps + 1, *c.shape)
        tanh_cells = u.new_empty(steps, *c.shape)
        outputs = u.new_empty(steps, *h.shape)
        cells[0] = c
        product = StepProduct(weight_hh, u.shape[1], steps, u.dtype)
        peep = p_i is not None
        keep = _float_mask(mask, u)
        h0 = h
        for t in range(steps):
            z = product.addmm(u[t], h)
            if peep:
                z[:, :hidden].addcmul_(p_i, c)
                z[:, hidden:2 * hidden].addcmul_(p_f, c)
            i, f, g, o = gates[t].chunk(4, dim=-1)
            torch.sigmoid(z[:, :2 * hidden], out=gates[t, :, :2 * hidden])
            torch.tanh(z[:, 2 * hidden:3 * hidden], out=g)
            if keep is None:
                c = torch.addcmul(f * c, i, g, out=cells[t + 1])
            else:
                c = torch.lerp(c, torch.addcmul(f * c, i, g), keep[t], out=cells[t + 1])
            if peep:
                z[:, 3 * hidden:].addcmul_(p_o, c)
            torch.sigmoid(z[:, 3 * hidden:], out=o)
            if keep is None:
                h = torch.mul(o, torch.tanh(c, out=tanh_cells[t]), out=outputs[t])
            else:
                h = torch.lerp(h, o * torch.tanh(c, out=tanh_cells[t]), keep[t], out=outputs[t])
        ctx.save_for_backward(h0, weight_hh, p_i, p_f, p_o, gates, cells, tanh_cells, outputs, keep)
        return outputs, h.clone(), c.clone()

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_h: Tensor, grad_c: Tensor):
        h0, weight_hh, p_i, p_f, p_o, gates, cells, tanh_cells, outputs, keep = ctx.saved_tensors
        steps, hidden = gates.shape[0], cells.shape[-1]
        peep = p_i is not None
        sig_d = gates * (1 - gates)  # σ' for i, f, o (the g block is overwritten below)
        sig_d[..., 2 * hidden:3 * hidden] = 1 - gates[..., 2 * hidden:3 * hidden].square()
        grad_z = torch.empty_like(gates)
        dh, dc = grad_h, grad_c
        for t in range(steps - 1, -1, -1):
            dh = dh + grad_outputs[t]
            if keep is not None:  # a padded row passes its gradient straight to the previous state
                dh_kept, dc_kept = dh * (1 - keep[t]), dc * (1 - keep[t])
                dh, dc = dh * keep[t], dc * keep[t]
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
            if keep is not None:
                dh, dc = dh + dh_kept, dc + dc_kept
        grad_weight = None
        if ctx.needs_input_grad[3]:
            previous = torch.cat([h0.unsqueeze(0), outputs[:-1]])
            grad_weight = torch.mm(grad_z.flatten(0, 1).t(), previous.flatten(0, 1))
        grad_p = [None, None, None]
        if peep:
            dz_i, dz_f, _, dz_o = grad_z.chunk(4, dim=-1)
            grad_p = [(dz_i * cells[:-1]).sum((0, 1)), (dz_f * cells[:-1]).sum((0, 1)), (dz_o * cells[1:]).sum((0, 1))]
        return grad_z, dh, dc, grad_weight, *grad_p, None


class LeakyLoop(torch.autograd.Function):
    """``h_t = lerp(tanh(u_t + h_{t-1} Uᵀ), h_{t-1}, a)`` over a whole sequence, with a hand-written backward.

    Backward per step is ``dh += g_t; dpre_t = dh ⊙ (1-a) ⊙ (1-c_t²); dh ← a ⊙ dh + dpre_t U``; the weight
    gradient ``dU = Σ_t dpre_tᵀ h_{t-1}`` is one matmul over all steps. With a ``mask`` a padded row keeps ``h``.
    """

    @staticmethod
    def forward(ctx, u: Tensor, h: Tensor, weight_hh: Tensor, retention: Tensor, mask: Tensor | None
                ) -> tuple[Tensor, Tensor]:
        outputs, candidates = torch.empty_like(u), torch.empty_like(u)
        product = StepProduct(weight_hh, u.shape[1], u.shape[0], u.dtype)
        keep = _float_mask(mask, u)
        h0 = h
        for t in range(u.shape[0]):
            candidate = product.addmm(u[t], h, out=candidates[t]).tanh_()  # no temporary per step
            if keep is None:
                h = torch.lerp(candidate, h, retention, out=outputs[t])
            else:
                h = torch.lerp(h, torch.lerp(candidate, h, retention), keep[t], out=outputs[t])
        ctx.save_for_backward(h0, weight_hh, retention, outputs, candidates, keep)
        return outputs, h.clone()

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_h: Tensor):
        h0, weight_hh, retention, outputs, candidates, keep = ctx.saved_tensors
        derivative = _DERIVATIVES["tanh"](candidates).mul_(1 - retention)  # d h_t / d pre_t
        if keep is not None:
            derivative.mul_(keep)
        grad_pre = torch.empty_like(candidates)
        need_retention = ctx.needs_input_grad[3]
        grad_hs = torch.empty_like(candidates) if need_retention else None
        dh = grad_h.clone()  # updated in place below: no temporaries per step
        for t in range(candidates.shape[0] - 1, -1, -1):
            dh.add_(grad_outputs[t])
            if need_retention:
                grad_hs[t] = dh
            torch.mul(dh, derivative[t], out=grad_pre[t])
            dh.mul_(retention if keep is None else torch.lerp(torch.ones_like(retention), retention, keep[t]))
            dh.addmm_(grad_pre[t], weight_hh)
        grad_weight = None
        if ctx.needs_input_grad[2]:  # sum_t dpre_tᵀ h_{t-1}: h_0 apart, so the outputs need no shifted copy
            grad_weight = torch.mm(grad_pre[0].t(), h0)
            if len(outputs) > 1:
                grad_weight.addmm_(grad_pre[1:].flatten(0, 1).t(), outputs[:-1].flatten(0, 1))
        grad_retention = None
        if need_retention:
            grad_hs = grad_hs if keep is None else grad_hs * keep
            grad_retention = (grad_hs[0] * (h0 - candidates[0])).sum(0)
            if len(outputs) > 1:
                grad_retention = grad_retention + (grad_hs[1:] * (outputs[:-1] - candidates[1:])).sum((0, 1))
            grad_retention = grad_retention.sum_to_size(retention.shape)
        return grad_pre, dh, grad_weight, grad_retention, None


# derivative of each activation written in terms of its output a = f(z)
_DERIVATIVES = {
    "tanh": lambda a: torch.addcmul(a.new_ones(()), a, a, value=-1),  # 1 - a², one pass
    "sigmoid": lambda a: torch.addcmul(a, a, a, value=-1),  # a - a²
    "relu": lambda a: (a > 0).to(a.dtype),
    "identity": None,
}
_FUNCTIONS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "identity": None,
              "relu": lambda z, out: torch.clamp(z, min=0, out=out)}


class JordanLoop(torch.autograd.Function):
    """``h_t = act(u_t + y_{t-1} Uᵀ)``, ``y_t = g(h_t Vᵀ + c)`` over a whole sequence, with a hand-written backward.

    Per step backward: ``dz2 = (g_t + dy) ⊙ g'``, ``dz1 = (dz2 V) ⊙ act'``, ``dy = dz1 U``; the gradients of
    ``U``, ``V`` and ``c`` are single matmuls/sums over all steps. With a ``mask`` a padded row keeps ``y``.
    """

    @staticmethod
    def forward(ctx, u: Tensor, y: Tensor, weight_hh: Tensor, weight_ho: Tensor, bias_ho: Tensor, act: str,
                out: str, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        steps = u.shape[0]
        hidden = torch.empty_like(u)
        outputs = u.new_empty(steps, *y.shape)
        # with a mask, ``outputs`` holds the kept state and ``activated`` the cell's own g(z) for the derivative
        activated = outputs if mask is None else u.new_empty(steps, *y.shape)
        recurrent = StepProduct(weight_hh, u.shape[1], steps, u.dtype)
        output_layer = StepProduct(weight_ho, u.shape[1], steps, u.dtype)
        act_fn, out_fn = _FUNCTIONS[act], _FUNCTIONS[out]
        keep = _float_mask(mask, u)
        y0 = y
        for t in range(steps):
            h = act_fn(recurrent.addmm(u[t], y, out=hidden[t]), out=hidden[t])  # in place: no temporary
            z2 = output_layer.linear(h, bias_ho)
            y_new = out_fn(z2, out=activated[t]) if out_fn is not None else activated[t].copy_(z2)
            y = y_new if keep is None else torch.lerp(y, y_new, keep[t], out=outputs[t])
        ctx.act, ctx.out = act, out
        ctx.save_for_backward(y0, weight_hh, weight_ho, hidden, outputs, activated, keep)
        return outputs, y.clone()

    @staticmethod
    def backward(ctx, grad_outputs: Tensor, grad_y: Tensor):
        y0, weight_hh, weight_ho, hidden, outputs, activated, keep = ctx.saved_tensors
        act_d, out_d = _DERIVATIVES[ctx.act](hidden), _DERIVATIVES[ctx.out]
        out_d = out_d(activated) if out_d is not None else None
        grad_z2, grad_z1 = torch.empty_like(outputs), torch.empty_like(hidden)
        dy = grad_y.clone()  # one buffer, updated in place: no temporaries per step
        for t in range(hidden.shape[0] - 1, -1, -1):
            if keep is None:  # dz2 = (dy + g_t) ⊙ g', written straight into its buffer
                dz2 = torch.add(dy, grad_outputs[t], out=grad_z2[t])
            else:
                dy.add_(grad_outputs[t])
                dy_kept = dy * (1 - keep[t])
                dz2 = torch.mul(dy, keep[t], out=grad_z2[t])
            if out_d is not None:
                dz2.mul_(out_d[t])
            dz1 = torch.mm(dz2, weight_ho, out=grad_z1[t]).mul_(act_d[t])
            torch.mm(dz1, weight_hh, out=dy)
            if keep is not None:
                dy.add_(dy_kept)
        flat_z2 = grad_z2.flatten(0, 1)
        grad_hh = None
        if ctx.needs_input_grad[2]:  # sum_t dz1_tᵀ y_{t-1}: y_0 apart, so the outputs need no shifted copy
            grad_hh = torch.mm(grad_z1[0].t(), y0)
            if len(outputs) > 1:
                grad_hh.addmm_(grad_z1[1:].flatten(0, 1).t(), outputs[:-1].flatten(0, 1))
        grad_ho = torch.mm(flat_z2.t(), hidden.flatten(0, 1)) if ctx.needs_input_grad[3] else None
        grad_bias = flat_z2.sum(0) if ctx.needs_input_grad[4] else None
        return grad_z1, dy, grad_hh, grad_ho, grad_bias, None, None, None


class LSTMKernel(SequenceKernel):
    """:class:`LSTMLoop` for the ``lstm`` cell in training, with or without peepholes (no layer norm, no projection).

    Layer norm stays on :class:`HoistedLoop`: a hand-written layer-norm backward measured no faster (1.71x vs 1.68x).
    """

    when = "grad"

    @classmethod
    def supports(cls, cell) -> bool:
        return not cell.layer_norm and cell.weight_hr is None

    @classmethod
    def run(cls, cell, u, state, mask):
        peepholes = (cell.peephole_i, cell.peephole_f, cell.peephole_o) if cell.peepholes else (None, None, None)
        outputs, h, c = LSTMLoop.apply(u, state.h, state.c, cell.weight_hh, *peepholes, mask)
        return zero_padded(outputs, mask), cell.state_type(h, c)


class LeakyKernel(SequenceKernel):
    """:class:`LeakyLoop` for the ``leaky`` cell in training."""

    when = "grad"

    @classmethod
    def run(cls, cell, u, state, mask):
        outputs, h = LeakyLoop.apply(u, state.h, cell.weight_hh, cell.retention(), mask)
        return zero_padded(outputs, mask), cell.state_type(h)


class JordanKernel(SequenceKernel):
    """:class:`JordanLoop` for the ``jordan`` cell in training (not with a softmax output)."""

    when = "grad"

    @classmethod
    def supports(cls, cell) -> bool:
        return cell.output_activation in _DERIVATIVES and cell.nonlinearity in _DERIVATIVES

    @classmethod
    def run(cls, cell, u, state, mask):
        bias_ho = cell.bias_ho if cell.bias_ho is not None else cell.weight_ho.new_zeros(cell.output_size)
        outputs, y = JordanLoop.apply(u, state.y, cell.weight_hh, cell.weight_ho, bias_ho, cell.nonlinearity,
                                      cell.output_activation, mask)
        return zero_padded(outputs, mask), cell.state_type(y)


# --- the echo-state reservoir outside autograd -----------------------------------------------------------------------
@torch.jit.script
def _reservoir_loop(u: Tensor, h: Tensor, weight_hh_t: Tensor, leak_rate: float,
                    mask: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:  # noqa: UP045 (TorchScript)
    """The reservoir recurrence outside Python: ``h ← (1-λ) h + λ tanh(u_t + h Wᵀ)``; padded rows keep ``h``."""
    outputs = torch.empty_like(u)
    for t in range(u.shape[0]):
        new = torch.lerp(h, torch.tanh(torch.addmm(u[t], h, weight_hh_t)), leak_rate)
        if mask is not None:
            new = torch.where(mask[t].unsqueeze(-1), new, h)
        h = new
        outputs[t] = h
    return outputs, h


def _numpy_reservoir(u: np.ndarray, h0: np.ndarray, weight_hh: np.ndarray, leak_rate: float,
                     mask: np.ndarray | None = None) -> np.ndarray:
    """The reservoir recurrence as a NumPy loop (OpenBLAS ``gemv``/``gemm``, no autograd, no per-step allocation).

    ``u`` is the input projection ``[T, B, H]``, ``h0`` the initial state ``[B, H]``; returns the states
    ``[T + 1, B, H]`` with ``h0`` in row 0. One sequence uses ``W @ h`` (``gemv``), several use ``H @ Wᵀ`` (``gemm``).
    With ``mask`` ``[T, B]`` a padded row keeps its state.
    """
    steps, batch, hidden = u.shape
    out = np.empty((steps + 1, batch, hidden), dtype=u.dtype)
    out[0] = h0
    if batch == 1:  # matrix-vector: rows of a [T + 1, H] view
        rows, inputs, weight = out.reshape(steps + 1, hidden), u.reshape(steps, hidden), weight_hh
        product = lambda h, o: np.dot(weight, h, out=o)  # noqa: E731
    else:
        rows, inputs, weight = out, u, weight_hh.T
        product = lambda h, o: np.dot(h, weight, out=o)  # noqa: E731
    add, tanh, mul = np.add, np.tanh, np.multiply
    padded = None if mask is None else ~mask.reshape(steps, batch, 1)
    if batch == 1 and padded is not None:
        padded = padded.reshape(steps, 1)
    if leak_rate == 1.0:
        for t in range(steps):
            nxt = rows[t + 1]
            product(rows[t], nxt)
            add(nxt, inputs[t], out=nxt)
            tanh(nxt, out=nxt)
            if padded is not None:
                np.copyto(nxt, rows[t], where=padded[t])
        return out
    buf = np.empty(rows.shape[1:], dtype=u.dtype)
    keep = u.dtype.type(1.0 - leak_rate)
    leak = u.dtype.type(leak_rate)
    for t in range(steps):
        prev, nxt = rows[t], rows[t + 1]
        product(prev, buf)
        add(buf, inputs[t], out=buf)
        tanh(buf, out=buf)
        mul(prev, keep, out=nxt)
        mul(buf, leak, out=buf)
        add(nxt, buf, out=nxt)
        if padded is not None:
            np.copyto(nxt, prev, where=padded[t])
    return out


class ReservoirKernel(SequenceKernel):
    """The ``esn`` cell when nothing needs a gradient: a NumPy/OpenBLAS loop on CPU, a TorchScript loop elsewhere.

    The cell's ``backend`` picks: ``"auto"`` (NumPy on CPU for float32/float64, TorchScript otherwise), ``"numpy"``,
    ``"script"``; ``"loop"`` declines the kernel (the autograd step loop runs).
    """

    when = "no_grad"

    @classmethod
    def supports(cls, cell) -> bool:
        return cell.backend != "loop"

    @classmethod
    def run(cls, cell, u, state, mask):
        backend = cell.backend
        if backend == "auto":
            backend = "numpy" if u.device.type == "cpu" and u.dtype in (torch.float32, torch.float64) else "script"
        if backend == "numpy":
            if u.device.type != "cpu":
                raise ValueError(f"backend='numpy' runs on CPU only, got input on {u.device}")
            weight = cell.weight_hh.detach().to(u.dtype).numpy()
            h0 = state.h.detach().to(u.dtype).numpy()
            np_mask = None if mask is None else mask.cpu().numpy()
            with blas_threads(torch.get_num_threads()):
                states = _numpy_reservoir(u.detach().numpy(), h0, weight, float(cell.leak_rate), np_mask)
            states = torch.from_numpy(states)
            return zero_padded(states[1:], mask), cell.state_type(states[-1].clone())
        outputs, h = _reservoir_loop(u, state.h, cell.weight_hh.t().to(u.dtype), float(cell.leak_rate), mask)
        return zero_padded(outputs, mask), cell.state_type(h)
