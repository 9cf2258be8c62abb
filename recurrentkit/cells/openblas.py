"""Set the thread count of the OpenBLAS that NumPy loaded, through ctypes (used by the reservoir's NumPy loop)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator


@functools.lru_cache(maxsize=1)
def _openblas_thread_api() -> tuple | None:
    """``(get, set)`` of the OpenBLAS that NumPy loaded (found in /proc/self/maps), or ``None`` where not found."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if getter is not None and setter is not None:
                return getter, setter
    return None


@contextlib.contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """Run NumPy's OpenBLAS with ``count`` threads inside the block (best effort: a no-op where not found).

    The reservoir's NumPy loop follows ``torch.get_num_threads()``, so ``torch.set_num_threads(1)`` also keeps
    OpenBLAS on one thread: on an oversubscribed machine a 2-thread ``gemv`` per step collapses, one thread does not.
    """
    api = _openblas_thread_api()
    if api is None:
        yield
        return
    getter, setter = api
    previous = int(getter())
    if previous != count:
        setter(int(count))
    try:
        yield
    finally:
        if previous != count:
            setter(previous)
