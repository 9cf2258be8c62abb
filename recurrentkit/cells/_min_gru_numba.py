"""The Numba half of :mod:`recurrentkit.cells.min_gru_kernel` (imported on first use; compiled code is cached).

Arrays: ``u`` and ``gates = σ(u)`` ``[T, B, 2H]`` (update-gate logits then candidate logits), ``keep`` ``[T, B]``
(1 at real steps, 0 at padding), ``h0`` ``[B, H]``, states ``out`` ``[T, B, H]``. The batch rows are shared out over
the threads (Numba's ``prange``); inside a row time runs in order and every step is a vectorised loop over the
``H`` units.
"""

import numba
import numpy as np


@numba.njit(inline="always", fastmath=True, cache=True)
def candidate(c, s):  # pragma: no cover - compiled
    """``g(c) = max(c + 0.5, σ(c))`` (``c + 0.5`` for ``c >= 0``, ``σ(c)`` below), ``s = σ(c)`` given."""
    shifted = c + np.float32(0.5)
    return shifted if shifted > s else s


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")
def forward(u, gates, keep, h0, out):  # pragma: no cover - compiled
    """``h_t = (1 - z_t) h_{t-1} + z_t g(c_t)`` at real steps, ``h_t = h_{t-1}`` at padded ones."""
    steps, batch, width = u.shape
    hidden = width // 2
    for b in numba.prange(batch):
        h = h0[b].copy()
        for t in range(steps):
            if keep[t, b]:
                logits, sig = u[t, b], gates[t, b]
                for j in range(hidden):
                    z = sig[j]
                    h[j] = z * candidate(logits[hidden + j], sig[hidden + j]) + (np.float32(1.0) - z) * h[j]
            row = out[t, b]
            for j in range(hidden):
                row[j] = h[j]


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")
def backward(u, gates, keep, h0, out, grad_out, grad_u, grad_h0):  # pragma: no cover - compiled
    """``dh_t = g_t + (1 - z_{t+1}) dh_{t+1}`` backwards in time, and from it ``dL/du`` (both halves) and
    ``dL/dh0``: ``dL/dk = (dh g(c) - dh h_{t-1}) z (1 - z)``, ``dL/dc = dh z g'(c)`` (``g' = 1`` for ``c >= 0``,
    ``σ(c)(1 - σ(c))`` below). Padded steps pass ``dh`` through and get zero gradients."""
    steps, batch, width = u.shape
    hidden = width // 2
    one = np.float32(1.0)
    for b in numba.prange(batch):
        carry = np.zeros(hidden, np.float32)  # (1 - z_{t+1}) dh_{t+1}
        for t in range(steps - 1, -1, -1):
            incoming, grad_row = grad_out[t, b], grad_u[t, b]
            if not keep[t, b]:
                for j in range(width):
                    grad_row[j] = 0.0
                for j in range(hidden):
                    carry[j] += incoming[j]
                continue
            logits, sig = u[t, b], gates[t, b]
            previous = out[t - 1, b] if t > 0 else h0[b]
            for j in range(hidden):
                dh = incoming[j] + carry[j]
                z, c, s = sig[j], logits[hidden + j], sig[hidden + j]
                grad_row[j] = dh * (candidate(c, s) - previous[j]) * z * (one - z)
                slope = one if c >= 0 else s * (one - s)
                grad_row[hidden + j] = dh * z * slope
                carry[j] = (one - z) * dh
        for j in range(hidden):
            grad_h0[b, j] = carry[j]
