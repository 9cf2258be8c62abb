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

Buffers above 32 MiB (glibc's cap) are still mapped afresh every step: the bfloat16 LSTM kernels' workspaces of the
main job (``[T, B, 4H]``, about 50 MiB) cost it 45.8 million minor page faults and 84 s of its 188 s wall time.
:func:`prefer_huge_pages` (also called by the command) sets PyTorch's ``THP_MEM_ALLOC_ENABLE=1``: its CPU allocator
then aligns large tensors to 2 MiB and asks for transparent huge pages (``madvise``), one fault per 2 MiB instead of
per 4 KiB. The main job: 0.93 million faults, 41 s system time, 2 min 41 s instead of 3 min 08 s, the same result.
PyTorch reads the variable at its first large allocation, so the call must come before that.
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


THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"


def prefer_huge_pages() -> bool:
    """Let PyTorch's CPU allocator back large tensors with transparent huge pages (``THP_MEM_ALLOC_ENABLE=1``).

    Returns ``True`` if the variable is now ``1`` (set here or already by the user); ``False`` where nothing was
    changed: ``RECURRENTKIT_MALLOC=default``, the user's own ``THP_MEM_ALLOC_ENABLE``, or a kernel without
    transparent huge pages (or with them set to ``never``).
    """
    if os.environ.get("RECURRENTKIT_MALLOC", "").lower() == "default":
        return False
    if "THP_MEM_ALLOC_ENABLE" in os.environ:
        return os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    try:
        with open(THP_SETTING) as setting:
            if "[never]" in setting.read():
                return False
    except OSError:
        return False
    os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
    return True


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


__all__ = ["keep_freed_memory", "prefer_huge_pages"]
