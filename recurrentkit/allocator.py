"""Keep freed CPU tensor memory in the process instead of handing it back to the kernel after every step.

PyTorch allocates CPU tensors with ``malloc``. glibc serves blocks above its mmap threshold (128 KiB at start,
raised as such blocks are freed, at most 32 MiB) with a fresh ``mmap`` and unmaps them on ``free``; it also trims the
top of the heap once more than twice that threshold is free. A training step allocates and frees the same large
buffers (logits ``[B*T, V]``, their gradients, the recurrent kernels' workspaces) every time, so each step page-faults
its working set back in and the kernel zeroes it again: on a 2-core CPU that showed as 4x the system time of a
hand-written loop and 0.83x its speed (``benchmarks/lm_step.py``).

:func:`keep_freed_memory` fixes both thresholds (``mallopt(M_MMAP_THRESHOLD, 32 MiB)``, ``mallopt(M_TRIM_THRESHOLD,
1 GiB)``): buffers up to 32 MiB come from the heap and are reused, step after step. The price is the usual one of a
caching allocator: the resident size stays at its peak. The ``recurrentkit`` command calls it at start; a Python
user may call it once, before training. It does nothing on other C libraries (macOS, musl, Windows), when the user
has set glibc's own ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``, or when ``RECURRENTKIT_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD = 1024 * 1024 * 1024  # 1 GiB (mallopt takes a C int)

_applied = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (see the module docstring).

    Returns ``True`` if the thresholds are now set (by this call or an earlier one), ``False`` where nothing was
    changed: not glibc, the user's own ``MALLOC_*_`` variables, or ``RECURRENTKIT_MALLOC=default``.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("RECURRENTKIT_MALLOC", "").lower() == "default":
        return False
    if any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False  # the user tuned glibc already
    if not sys.platform.startswith("linux"):
        return False
    libc = _glibc()
    if libc is None:
        return False
    # mallopt returns 1 on success; setting either threshold also turns off glibc's dynamic adjustment of both
    _applied = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                    TRIM_THRESHOLD))
    return _applied


def _glibc() -> ctypes.CDLL | None:
    """The process's C library if it is glibc (``gnu_get_libc_version`` exists), else ``None``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


__all__ = ["keep_freed_memory"]
