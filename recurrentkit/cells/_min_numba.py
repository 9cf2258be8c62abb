"""The Numba half of :mod:`recurrentkit.cells.min_kernels` (imported on first use; compiled code is cached).

Arrays: the projected input ``u`` ``[T, B, G]``, what torch computed from it first (``pre``, below), ``keep``
``[T, B]`` (1 at real steps, 0 at padding), ``h0`` ``[B, H]``, the states ``out`` ``[T, B, H]``. The batch rows are
shared out over the threads (Numba's ``prange``); inside a row time runs in order and every step is a vectorised loop
over the ``H`` units. Backward carries ``a_{t+1} dh_{t+1}`` down the row; padded steps pass it through unchanged
(``a = 1, b = 0``) and get zero gradients.

* min_gru: ``u = [k, c]``, ``pre = σ(u) = [z, s]``; ``a = 1 - z``, ``b = z g(c)``.
* min_lstm: ``u = [k_f, k_i, c]``, ``pre = [a, σ(-k_f), σ(-k_i), σ(c)]`` with ``a = f' = σ(log σ(k_f) - log σ(k_i))``
  (computed stably by torch); ``b = (1 - a) g(c)``.

``g(c) = max(c + 0.5, σ(c))``, ``g'(c) = 1`` for ``c >= 0``, ``σ(c)(1 - σ(c))`` below.

The two cells' loops repeat one skeleton on purpose: written once with the per-row step as an inlined helper, the
min_gru backward pass for ``[T, B, H] = [100, 64, 512]`` on two threads took 5.7-6.7 ms (a switch on the cell) or
4.4-6.0 ms (the step passed as an argument, which Numba also cannot cache) against 3.1-3.5 ms as written here.
"""

import numba
import numpy as np

ONE, HALF = np.float32(1.0), np.float32(0.5)


@numba.njit(inline="always", fastmath=True, cache=True)
def candidate(c, s):  # pragma: no cover - compiled
    """``g(c)`` with ``s = σ(c)`` given."""
    shifted = c + HALF
    return shifted if shifted > s else s


@numba.njit(inline="always", fastmath=True, cache=True)
def slope(c, s):  # pragma: no cover - compiled
    """``g'(c)`` with ``s = σ(c)`` given."""
    return ONE if c >= 0 else s * (ONE - s)


@numba.njit(inline="always", fastmath=True, cache=True)
def pass_padded_step(incoming, grad_row, carry):  # pragma: no cover - compiled
    for j in range(grad_row.shape[0]):
        grad_row[j] = 0.0
    for j in range(carry.shape[0]):
        carry[j] += incoming[j]


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")
def min_gru_forward(u, pre, keep, h0, out):  # pragma: no cover - compiled
    """``h_t = (1 - z_t) h_{t-1} + z_t g(c_t)``."""
    steps, batch, hidden = out.shape
    for b in numba.prange(batch):
        h = h0[b].copy()
        for t in range(steps):
            if keep[t, b]:
                logits, gates = u[t, b], pre[t, b]
                for j in range(hidden):
                    z = gates[j]
                    h[j] = z * candidate(logits[hidden + j], gates[hidden + j]) + (ONE - z) * h[j]
            out[t, b, :] = h


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")
def min_gru_backward(u, pre, keep, h0, out, grad_out, grad_u, grad_h0):  # pragma: no cover - compiled
    """``dL/dk = dh (g(c) - h_{t-1}) z (1 - z)``, ``dL/dc = dh z g'(c)``, carry ``(1 - z) dh``."""
    steps, batch, hidden = out.shape
    for b in numba.prange(batch):
        carry = np.zeros(hidden, np.float32)
        for t in range(steps - 1, -1, -1):
            incoming, grad_row = grad_out[t, b], grad_u[t, b]
            if not keep[t, b]:
                pass_padded_step(incoming, grad_row, carry)
                continue
            logits, gates = u[t, b], pre[t, b]
            previous = out[t - 1, b] if t > 0 else h0[b]
            for j in range(hidden):
                dh = incoming[j] + carry[j]
                z, c, s = gates[j], logits[hidden + j], gates[hidden + j]
                grad_row[j] = dh * (candidate(c, s) - previous[j]) * z * (ONE - z)
                grad_row[hidden + j] = dh * z * slope(c, s)
                carry[j] = (ONE - z) * dh
        grad_h0[b, :] = carry


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")
def min_lstm_forward(u, pre, keep, h0, out):  # pragma: no cover - compiled
    """``h_t = a_t h_{t-1} + (1 - a_t) g(c_t)``."""
    steps, batch, hidden = out.shape
    for b in numba.prange(batch):
        h = h0[b].copy()
        for t in range(steps):
            if keep[t, b]:
                logits, gates = u[t, b], pre[t, b]
                for j in range(hidden):
                    a = gates[j]
                    h[j] = a * h[j] + (ONE - a) * candidate(logits[2 * hidden + j], gates[3 * hidden + j])
            out[t, b, :] = h


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")
def min_lstm_backward(u, pre, keep, h0, out, grad_out, grad_u, grad_h0):  # pragma: no cover - compiled
    """With ``δ = dh (h_{t-1} - g(c)) a (1 - a)``: ``dL/dk_f = δ σ(-k_f)``, ``dL/dk_i = -δ σ(-k_i)``,
    ``dL/dc = dh (1 - a) g'(c)``, carry ``a dh``."""
    steps, batch, hidden = out.shape
    for b in numba.prange(batch):
        carry = np.zeros(hidden, np.float32)
        for t in range(steps - 1, -1, -1):
            incoming, grad_row = grad_out[t, b], grad_u[t, b]
            if not keep[t, b]:
                pass_padded_step(incoming, grad_row, carry)
                continue
            logits, gates = u[t, b], pre[t, b]
            previous = out[t - 1, b] if t > 0 else h0[b]
            for j in range(hidden):
                dh = incoming[j] + carry[j]
                a, c, s = gates[j], logits[2 * hidden + j], gates[3 * hidden + j]
                delta = dh * (previous[j] - candidate(c, s)) * a * (ONE - a)
                grad_row[j] = delta * gates[hidden + j]
                grad_row[hidden + j] = -delta * gates[2 * hidden + j]
                grad_row[2 * hidden + j] = dh * (ONE - a) * slope(c, s)
                carry[j] = a * dh
        grad_h0[b, :] = carry
