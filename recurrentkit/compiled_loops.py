"""What the optional Numba-compiled loops share (word2vec's training loop, min_gru's pass): whether Numba imports,
and running a parallel loop on a number of threads without changing torch's.

Numba's parallel loops run on its OpenMP threading layer, which in a torch process is the same GNU OpenMP runtime
torch's CPU operations use (one thread pool, no oversubscription). Starting that layer sets OpenMP's thread count
to Numba's default (every core), which would silently change ``torch.get_num_threads()``; :func:`numba_threads`
puts torch's back.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["numba_available", "numba_threads"]


@functools.lru_cache(maxsize=1)
def numba_available() -> bool:
    """Whether Numba is installed (``pip install "recurrentkit[fast]"``)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def numba_threads(threads: int) -> Iterator[int]:
    """Run Numba's parallel loops inside on ``threads`` threads (capped by Numba's pool); yields the count used.
    ``torch.get_num_threads()`` is the same afterwards as before."""
    import numba

    torch_threads = torch.get_num_threads()
    used = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(used)
    try:
        yield used
    finally:
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
