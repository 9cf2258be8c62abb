"""Scans of the linear recurrence ``h_t = a_t ⊙ h_{t-1} + b_t`` over time, without a step-by-step time loop.

A recurrence that is linear in ``h`` has the closed form

    h_t = A_t ⊙ h_0 + Σ_{s<=t} (A_t / A_s) ⊙ b_s,        A_t = a_1 ⊙ ... ⊙ a_t,

so all ``T`` states can be computed in ``O(log T)`` or ``O(√T)`` sequential depth instead of ``T``. Two kernels:

* :func:`linear_scan` (the default) — a *chunked* scan in linear space. The sequence is cut into ``N`` chunks of
  ``C ≈ √T`` steps; one pass runs the recurrence inside all chunks at once (``C`` vectorised steps, each over ``N``
  chunks) while keeping the running products ``A``; a second pass carries the chunks' end states across chunk
  boundaries (``N`` steps); one fused multiply-add then adds each carry to its chunk. It only multiplies and adds
  (never divides by ``A``), so it is as accurate as the step loop. Its backward is hand-written: the gradient
  ``dL/dh`` obeys the same recurrence run backwards in time, ``dh_t = g_t + a_{t+1} ⊙ dh_{t+1}``, so it is the same
  scan again; then ``dL/db_t = dh_t`` and ``dL/da_t = dh_t ⊙ h_{t-1}``.
* :func:`log_linear_scan` — Heinsen (2023), "Efficient Parallelization of a Ubiquitous Sequential Computation", for
  positive ``a``, ``b`` given by their logarithms (what Feng et al. 2024 use for minGRU/minLSTM):

      log h_t = a*_t + logcumsumexp_{s<=t}(log b_s - a*_s),     a*_t = Σ_{s<=t} log a_s,

  differentiated by autograd. In float32 ``a*_t`` grows like ``t``, and its rounding error with it, so the
  sequence is processed in chunks of ``chunk_size`` steps (carrying the state in linear space between them).

Both take ``a``, ``b`` of shape ``[T, *]`` (time first, e.g. ``[T, B, H]``) and an optional initial state ``h0``
of shape ``[*]`` (zeros when ``None``), and return all states ``h`` ``[T, *]`` (``h[-1]`` is the final state).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["linear_scan", "log_linear_scan", "scan_coefficients", "sequential_scan"]


def _check(a: Tensor, b: Tensor, h0: Tensor | None, names: tuple[str, str] = ("a", "b")) -> None:
    if b.dim() < 1 or b.shape[0] == 0:
        raise ValueError(f"{names[1]} must be [T, ...] with T >= 1 steps, got shape {tuple(b.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape [T, ...], got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if h0 is not None and h0.shape != b.shape[1:]:
        raise ValueError(f"h0 must have shape {tuple(b.shape[1:])} (one step of {names[1]}), got {tuple(h0.shape)}")


def _default_chunk(b: Tensor) -> int:
    """``⌈√T⌉``, or 1 (the plain loop) on CPU once a step is wide enough that the loop's per-step overhead is small
    (measured crossover on a 2-core CPU: about 2,048 elements per step)."""
    if b.device.type == "cpu" and b[0].numel() >= 2048:
        return 1
    return max(1, math.isqrt(max(b.shape[0] - 1, 0)) + 1)


def _loop(a: Tensor, b: Tensor, h0: Tensor | None, reverse: bool = False, out: Tensor | None = None) -> Tensor:
    """The plain loop, ``T`` fused multiply-adds; ``reverse`` runs ``h_t = a_{t+1} ⊙ h_{t+1} + b_t`` from the end
    (the backward recurrence: the coefficients shifted by one step, read in place)."""
    steps = b.shape[0]
    out = torch.empty_like(b) if out is None else out
    if reverse:
        h = out[steps - 1].copy_(b[steps - 1])
        for t in range(steps - 2, -1, -1):
            h = torch.addcmul(b[t], a[t + 1], h, out=out[t])
        return out
    h = h0
    for t in range(steps):
        h = out[t].copy_(b[t]) if h is None else torch.addcmul(b[t], a[t], h, out=out[t])
    return out


def _chunked(a: Tensor, b: Tensor, h0: Tensor | None, chunk: int) -> Tensor:
    """The chunked scan: ``chunk`` vectorised steps inside all chunks, then one step per chunk for the carries."""
    steps = b.shape[0]
    num = -(-steps // chunk)
    pad = num * chunk - steps
    if pad:  # identity steps at the end (a = 1, b = 0) leave every earlier state unchanged
        a = torch.cat([a, a.new_ones(pad, *a.shape[1:])])
        b = torch.cat([b, b.new_zeros(pad, *b.shape[1:])])
    a4, b4 = a.reshape(num, chunk, *a.shape[1:]), b.reshape(num, chunk, *b.shape[1:])
    local, prod = torch.empty_like(b4), torch.empty_like(a4)
    local[:, 0], prod[:, 0] = b4[:, 0], a4[:, 0]
    for j in range(1, chunk):  # inside every chunk at once, from a zero state
        torch.addcmul(b4[:, j], a4[:, j], local[:, j - 1], out=local[:, j])
        torch.mul(a4[:, j], prod[:, j - 1], out=prod[:, j])
    carries = torch.empty_like(b4[:, 0])  # the state entering each chunk
    carry = h0
    for k in range(num):
        if carry is None:
            carries[k].zero_()
            carry = local[k, -1]
        else:
            carries[k] = carry
            carry = torch.addcmul(local[k, -1], prod[k, -1], carry)
    return local.addcmul_(prod, carries.unsqueeze(1)).reshape(num * chunk, *b.shape[1:])[:steps]


def _scan(a: Tensor, b: Tensor, h0: Tensor | None, chunk: int, reverse: bool = False, out: Tensor | None = None
          ) -> Tensor:
    """Forward scan, or with ``reverse`` the backward recurrence ``h_t = a_{t+1} ⊙ h_{t+1} + b_t``; no autograd."""
    steps = b.shape[0]
    if chunk <= 1 or chunk >= steps:
        return _loop(a, b, h0, reverse, out)
    if not reverse:
        result = _chunked(a, b, h0, chunk)
    else:
        shifted = torch.cat([a[1:], a.new_zeros(1, *a.shape[1:])]).flip(0)
        result = _chunked(shifted, b.flip(0), None, chunk).flip(0)
    return result if out is None else out.copy_(result)


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor | None, chunk: int) -> Tensor:
        out = _scan(a, b, h0, chunk)
        ctx.chunk, ctx.has_h0 = chunk, h0 is not None
        ctx.save_for_backward(a, out, *([h0] if h0 is not None else []))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        a, out, *h0 = ctx.saved_tensors
        # dh_t = g_t + a_{t+1} dh_{t+1}: the same recurrence backwards, with the coefficients shifted by one step
        grad_h = _scan(a, grad_out.contiguous(), None, ctx.chunk, reverse=True)
        grad_a = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.empty_like(a)
            torch.mul(grad_h[1:], out[:-1], out=grad_a[1:])
            if h0:
                torch.mul(grad_h[0], h0[0], out=grad_a[0])
            else:
                grad_a[0].zero_()
        grad_h0 = grad_h[0] * a[0] if h0 and ctx.needs_input_grad[2] else None
        return grad_a, grad_h if ctx.needs_input_grad[1] else None, grad_h0, None


def linear_scan(a: Tensor, b: Tensor, h0: Tensor | None = None, *, chunk_size: int | None = None) -> Tensor:
    """All states of ``h_t = a_t ⊙ h_{t-1} + b_t`` (chunked parallel scan, hand-written backward).

    Args:
        a: ``[T, *]`` multiplicative coefficients (any sign).
        b: ``[T, *]`` additive inputs.
        h0: ``[*]`` initial state ``h_{-1}``; zeros when ``None``.
        chunk_size: steps per chunk; ``1`` runs the plain sequential loop (``T`` small operations); ``None``
            picks ``⌈√T⌉`` (about ``4√T`` larger operations), or the loop on CPU when one step has >= 2,048
            elements (there the loop's per-step overhead is small and the chunked scan's extra passes cost more).

    Returns:
        ``h`` ``[T, *]``, ``h[t]`` the state after step ``t``.
    """
    _check(a, b, h0)
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    chunk = _default_chunk(b) if chunk_size is None else int(chunk_size)
    a, b = torch.broadcast_tensors(a, b)  # same shape already; makes them plain tensors for the kernel
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (a, b, h0)):
        return _LinearScan.apply(a.contiguous(), b.contiguous(), h0, chunk)
    return _scan(a.contiguous(), b.contiguous(), h0, chunk)


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor | None = None) -> Tensor:
    """The reference: ``h_t = a_t ⊙ h_{t-1} + b_t`` one step at a time, differentiated by autograd."""
    _check(a, b, h0)
    h = torch.zeros_like(b[0]) if h0 is None else h0
    outputs = []
    for a_t, b_t in zip(a.unbind(0), b.unbind(0)):
        h = a_t * h + b_t
        outputs.append(h)
    return torch.stack(outputs)


def log_linear_scan(log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, *, chunk_size: int | None = 64
                    ) -> Tensor:
    """All states of ``h_t = a_t ⊙ h_{t-1} + b_t`` for positive ``a``, ``b`` given as logarithms (Heinsen 2023).

    Inside a chunk, ``h_t = exp(a*_t + logcumsumexp(log b - a*)_t) + exp(a*_t) ⊙ h_in`` with
    ``a*_t = cumsum(log a)_t`` counted from the chunk's start and ``h_in`` the state entering the chunk (``h0`` for
    the first; any sign). ``chunk_size=None`` is Heinsen's single pass; chunks bound ``|a*|`` and so the float32
    rounding error, which otherwise grows with ``T``. Differentiated by autograd; ``log_b = -inf`` (``b = 0``) is
    allowed.

    Returns:
        ``h`` ``[T, *]`` in linear space.
    """
    _check(log_a, log_b, h0, ("log_a", "log_b"))
    steps = log_b.shape[0]
    chunk = steps if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
    pieces, h_in = [], h0
    for start in range(0, steps, chunk):
        a_star = torch.cumsum(log_a[start:start + chunk], 0)
        h = torch.exp(a_star + torch.logcumsumexp(log_b[start:start + chunk] - a_star, 0))
        if h_in is not None:
            h = torch.addcmul(h, torch.exp(a_star), h_in)
        pieces.append(h)
        h_in = h[-1]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


# --- cells that declare their coefficients ----------------------------------------------------------------------------
_BLOCK_ELEMENTS = 1 << 18  # ~1 MB of float32 per temporary: the coefficients of a block stay in cache


def _block_steps(steps: int, width: int) -> int:
    return max(1, min(steps, _BLOCK_ELEMENTS // max(width, 1)))


def _masked_coefficients(coefficients, u: Tensor, keep: Tensor | None, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    a, b = coefficients(u)
    if keep is not None:  # padded steps are identities: a = 1, b = 0 keep the state
        a = torch.where(keep, a, 1.0)
        b = torch.where(keep, b, 0.0)
    return a.to(dtype), b.to(dtype)


def _scan_blocks(cell, mask: Tensor | None, block: int, chunk: int | None, u: Tensor, h0: Tensor,
                 keep_a: bool = False) -> tuple[Tensor, Tensor | None]:
    """The forward pass, block by block, without a graph; with ``keep_a`` also every step's ``a``."""
    steps = u.shape[0]
    out = h0.new_empty(steps, *h0.shape)
    all_a = torch.empty_like(out) if keep_a else None
    h = h0
    for start in range(0, steps, block):
        stop = min(start + block, steps)
        keep = None if mask is None else mask[start:stop].unsqueeze(-1)
        a, b = _masked_coefficients(cell.coefficients, u[start:stop], keep, h0.dtype)
        _scan(a, b, h, _default_chunk(b) if chunk is None else chunk, out=out[start:stop])
        if all_a is not None:
            all_a[start:stop] = a
        h = out[stop - 1]
    return out, all_a


def _hand_written_backward(cell):
    """The cell's ``coefficients_backward(u, grad_a, grad_b, out)`` when it has one and its coefficients read no
    parameter (then ``dL/du`` is all the coefficients pass on), else ``None``."""
    return getattr(cell, "coefficients_backward", None)


class _CoefficientScan(torch.autograd.Function):
    """``h_t = a_t ⊙ h_{t-1} + b_t`` with ``(a, b) = coefficients(u)``, in blocks of time that stay in cache.

    Forward computes each block's coefficients without a graph and scans it; only ``u`` and the states are kept.
    Backward walks the blocks in reverse: it recomputes a block's coefficients under autograd, runs the reverse
    recurrence ``dh_t = g_t + a_{t+1} ⊙ dh_{t+1}`` over it, and back-propagates ``dL/da = dh ⊙ h_{t-1}``,
    ``dL/db = dh`` through the coefficients in one call. Compared with autograd over whole-sequence tensors this
    saves the ``[T, B, H]`` temporaries (and their page faults) of every elementwise operation.
    """

    @staticmethod
    def forward(ctx, cell, names: tuple[str, ...], mask: Tensor | None, block: int, chunk: int | None, u: Tensor,
                h0: Tensor, *params: Tensor) -> Tensor:
        vjp = _hand_written_backward(cell)
        out, all_a = _scan_blocks(cell, mask, block, chunk, u, h0, keep_a=vjp is not None)
        ctx.cell, ctx.names, ctx.mask, ctx.block, ctx.chunk = cell, names, mask, block, chunk
        ctx.save_for_backward(u, h0, out, all_a, *params)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):
        u, h0, out, all_a, *params = ctx.saved_tensors
        cell, names = ctx.cell, ctx.names
        current = dict(cell.named_parameters())
        if any(current.get(n) is not p for n, p in zip(names, params)):  # e.g. under torch.func.functional_call
            with torch.nn.utils.stateless._reparametrize_module(cell, dict(zip(names, params))):
                return _CoefficientScan._backward(ctx, cell, u, h0, out, all_a, params, grad_out)
        return _CoefficientScan._backward(ctx, cell, u, h0, out, all_a, params, grad_out)

    @staticmethod
    def _backward(ctx, cell, u, h0, out, all_a, params, grad_out):
        need_u, need_h0 = ctx.needs_input_grad[5], ctx.needs_input_grad[6]
        need_params = ctx.needs_input_grad[7:]
        trainable = [p for p, need in zip(params, need_params) if need]
        grad_u = torch.empty_like(u) if need_u else None
        grad_params: list[Tensor | None] = [None] * len(trainable)
        steps, carry = u.shape[0], None  # carry: dL/dh_{stop-1} arriving from the later blocks
        for start in reversed(range(0, steps, ctx.block)):
            stop = min(start + ctx.block, steps)
            keep = None if ctx.mask is None else ctx.mask[start:stop].unsqueeze(-1)
            if all_a is not None:  # hand-written: a was kept, dL/du comes from the cell's coefficients_backward
                a = all_a[start:stop]
            else:
                with torch.enable_grad():
                    u_block = u[start:stop].detach().requires_grad_(need_u)
                    a, b = _masked_coefficients(cell.coefficients, u_block, keep, out.dtype)
            g = grad_out[start:stop]
            if carry is not None:
                g = g.clone()
                g[-1] += carry
            chunk = _default_chunk(g) if ctx.chunk is None else ctx.chunk
            grad_h = _scan(a.detach(), g.contiguous(), None, chunk, reverse=True)
            previous = out[start - 1] if start > 0 else h0
            grad_a = torch.empty_like(grad_h)
            torch.mul(grad_h[1:], out[start:stop - 1], out=grad_a[1:])
            torch.mul(grad_h[0], previous, out=grad_a[0])
            carry = grad_h[0] * a[0].detach()
            if all_a is not None:
                if need_u:
                    if keep is not None:  # padded steps: a = 1, b = 0 are constants
                        grad_a.masked_fill_(~keep, 0.0)
                        grad_h.masked_fill_(~keep, 0.0)
                    cell.coefficients_backward(u[start:stop], grad_a, grad_h, out=grad_u[start:stop])
                continue
            inputs = ([u_block] if need_u else []) + trainable
            if inputs:
                grads = torch.autograd.grad((a, b), inputs, (grad_a, grad_h), allow_unused=True)
                if need_u:
                    grad_u[start:stop] = 0.0 if grads[0] is None else grads[0]
                    grads = grads[1:]
                for index, grad in enumerate(grads):
                    if grad is not None:
                        grad_params[index] = grad if grad_params[index] is None else grad_params[index] + grad
        grad_h0 = carry if need_h0 else None
        trainable_grads = iter(grad_params)
        grad_rest = [next(trainable_grads) if need else None for need in need_params]
        return None, None, None, None, None, grad_u, grad_h0, *grad_rest


def scan_coefficients(cell, u: Tensor, h0: Tensor, mask: Tensor | None = None, *, chunk_size: int | None = None,
                      block_steps: int | None = None) -> Tensor:
    """All states of ``h_t = a_t ⊙ h_{t-1} + b_t`` with ``(a_t, b_t) = cell.coefficients(u_t)``.

    The training kernel of :class:`~recurrentkit.cells.linear.LinearRecurrentCell`: ``u`` ``[T, B, G]`` is the
    projected input, ``h0`` ``[B, H]`` the initial state, ``mask`` ``[T, B]`` (``True`` at real steps) turns padded
    steps into identities (``a = 1, b = 0``). Time is processed in blocks of ``block_steps`` (default: about 2^18
    elements per block) whose temporaries stay in cache; gradients reach ``u``, ``h0`` and the cell's parameters.
    Returns ``h`` ``[T, B, H]`` (not masked: padded steps repeat the last real state).
    """
    if u.dim() < 2 or u.shape[0] == 0:
        raise ValueError(f"u must be [T, B, ...] with T >= 1, got shape {tuple(u.shape)}")
    if mask is not None and mask.shape != u.shape[:2]:
        raise ValueError(f"mask must have shape {tuple(u.shape[:2])} ([T, B]), got {tuple(mask.shape)}")
    block = _block_steps(u.shape[0], h0.numel()) if block_steps is None else max(1, int(block_steps))
    named = list(cell.named_parameters())
    if torch.is_grad_enabled() and any(t.requires_grad for t in (u, h0, *(p for _, p in named))):
        return _CoefficientScan.apply(cell, tuple(n for n, _ in named), mask, block, chunk_size, u, h0,
                                      *(p for _, p in named))
    with torch.no_grad():
        return _scan_blocks(cell, mask, block, chunk_size, u, h0)[0]
