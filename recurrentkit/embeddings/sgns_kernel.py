"""word2vec's training loop compiled with Numba: a chunk of raw text in, the updated vectors out (Hogwild threads).

This is word2vec.c's ``TrainModelThread`` for negative sampling, on a chunk of token ids:

1. subsampling: token ``w`` is kept with probability ``keep[w]``;
2. for each kept centre word, a window half-width ``b`` drawn uniformly from ``1..window`` (``shrink``; else
   ``window``), never crossing a sentence end;
3. for each (input ``i``, target ``o``) -- skip-gram: ``i`` a context word, ``o`` the centre (word2vec.c's order);
   CBOW: ``v`` the mean of the context vectors -- and ``K`` noise words ``n_k ~ P_n`` (Walker alias draws; a draw
   equal to ``o`` is skipped)::

       e = 0
       for (t, label) in [(o, 1), (n_1, 0), ..., (n_K, 0)]:
           g = alpha * (label - sigmoid(u_t . v))
           e += g * u_t ;  u_t += g * v
       v_i += e            # CBOW: every context word gets e

``sigmoid`` is read from word2vec.c's table (1000 points of [-6, 6); 0 or 1 beyond), as in word2vec.c (gensim uses the
same table).
``v`` are the input vectors (``syn0``), ``u`` the output vectors (``syn1neg``); ``alpha`` falls linearly across the
chunk from ``alpha_start`` to ``alpha_end``. Random numbers come from word2vec.c's linear congruential generator,
one stream per thread seeded from ``seed``. The chunk is split at sentence ends into one range per thread and the
threads update the shared matrices without locks (Hogwild, as word2vec.c and gensim do); with one thread the result
is deterministic and equals a plain-Python loop (tests/test_word2vec_kernel.py).

Numba is an optional dependency (``pip install "recurrentkit[fast]"``); :func:`available` says whether it imports.
"""

from __future__ import annotations

import numpy as np

from ..compiled_loops import numba_available, numba_threads

__all__ = ["available", "lcg_next", "train_chunk", "uniform", "warm_up"]

_LCG_MULTIPLIER, _LCG_INCREMENT = 25214903917, 11  # word2vec.c's next_random
_MASK64 = (1 << 64) - 1


def lcg_next(state: int) -> int:
    """word2vec.c's ``next_random = next_random * 25214903917 + 11`` (mod 2**64), in Python (for references)."""
    return (state * _LCG_MULTIPLIER + _LCG_INCREMENT) & _MASK64


def uniform(state: int) -> float:
    """The uniform number in [0, 1) a state stands for: its top 53 bits."""
    return (state >> 11) * 2.0 ** -53


def available() -> bool:
    """Whether Numba is installed (the compiled backend of :class:`~recurrentkit.tasks.word2vec.Word2VecTask`)."""
    return numba_available()


def _kernel():
    from ._sgns_numba import train

    return train


def warm_up() -> None:
    """Load the compiled loop from Numba's cache (compiling it on the very first use, a few seconds) by training a
    tiny chunk; call it before timing."""
    w = np.zeros((2, 2), np.float32)
    ids = np.zeros(2, np.int64)
    train_chunk(w, w.copy(), ids, ids, np.ones(2), np.array([0.5, 1.0]))


def train_chunk(w_in: np.ndarray, w_out: np.ndarray, ids: np.ndarray, sentences: np.ndarray, keep: np.ndarray,
                noise_cdf: np.ndarray, *, mode: str = "sg", window: int = 5, shrink_windows: bool = True,
                negative: int = 5, alpha_start: float = 0.025, alpha_end: float | None = None, seed: int = 1,
                cbow_mean: bool = True, threads: int = 1, loss_every: int = 16,
                dim: int | None = None) -> tuple[float, int]:
    """Train on one chunk of token ids in place; returns ``(summed loss, number of examples)``.

    The loss is only reported, never trained on (the update is word2vec's closed form), and its logarithms cost more
    than the rest of a CBOW example, so it is measured on the examples of every ``loss_every``-th kept centre word
    and scaled to all examples: an unbiased estimate of the summed loss (``loss_every=1``: exact; gensim computes
    none unless asked).

    Args:
        w_in, w_out: ``[V, D]`` float32, C-contiguous: input and output vectors (updated in place).
        ids: ``[N]`` token ids of the chunk in text order. sentences: ``[N]`` sentence index of each token
            (non-decreasing; windows never cross a change).
        keep: ``[V]`` probability of keeping each word (subsampling). noise_cdf: ``[V]`` cumulative noise
            distribution (last entry 1).
        mode: ``"sg"`` (examples are pairs) or ``"cbow"`` (examples are centre words).
        alpha_start, alpha_end: learning rate at the chunk's start and end (linear in between; end defaults to start).
        seed: seed of this chunk's random streams. threads: Hogwild threads (1: deterministic).
        loss_every: measure the loss on one kept centre word in ``loss_every`` (1: on all).
        dim: the vectors are the first ``dim`` columns of each row (default: all); the rest of a row is padding,
            never read or written (rows of 128 floats start on their own cache lines).
    """
    if mode not in ("sg", "cbow"):
        raise ValueError(f"mode must be 'sg' or 'cbow', got {mode!r}")
    for name, w in (("w_in", w_in), ("w_out", w_out)):
        if w.dtype != np.float32 or not w.flags.c_contiguous or w.ndim != 2:
            raise ValueError(f"{name} must be a C-contiguous 2-d float32 array, got {w.dtype} {w.shape}")
    if w_in.shape != w_out.shape:
        raise ValueError(f"w_in and w_out differ in shape: {w_in.shape} vs {w_out.shape}")
    vocab = w_in.shape[0]
    if len(keep) != vocab or len(noise_cdf) != vocab:
        raise ValueError(f"keep ({len(keep)}) and noise_cdf ({len(noise_cdf)}) need one entry per word ({vocab})")
    if ids.shape != sentences.shape or ids.ndim != 1:
        raise ValueError(f"ids {ids.shape} and sentences {sentences.shape} must be 1-d and of equal length")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise IndexError(f"ids outside [0, {vocab})")
    if window < 1 or negative < 0:
        raise ValueError(f"need window >= 1 and negative >= 0, got {window}, {negative}")
    if loss_every < 1:
        raise ValueError(f"loss_every must be >= 1, got {loss_every}")
    dim = w_in.shape[1] if dim is None else int(dim)
    if not 1 <= dim <= w_in.shape[1]:
        raise ValueError(f"dim must be in [1, {w_in.shape[1]}] (the row width), got {dim}")
    with numba_threads(max(1, min(int(threads), max(len(ids), 1)))) as threads:
        loss, count, scored = _kernel()(
            w_in, w_out, np.ascontiguousarray(ids, np.int64), np.ascontiguousarray(sentences, np.int64),
            np.ascontiguousarray(keep, np.float64), np.ascontiguousarray(noise_cdf, np.float64), mode == "cbow",
            bool(cbow_mean), int(window), bool(shrink_windows), int(negative), float(alpha_start),
            float(alpha_start if alpha_end is None else alpha_end), int(seed) & _MASK64, threads, int(loss_every),
            dim)
    return float(loss) * count / max(scored, 1), int(count)
