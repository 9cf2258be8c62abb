"""The Numba half of :mod:`recurrentkit.embeddings.sgns_kernel` (imported on first use; compiled code is cached)."""

import numba
import numpy as np

from ._prefetch import prefetch_for_write
from .sgns_kernel import _LCG_INCREMENT, _LCG_MULTIPLIER

_MULTIPLIER, _INCREMENT = np.uint64(_LCG_MULTIPLIER), np.uint64(_LCG_INCREMENT)  # word2vec.c's next_random
_SCALE = 2.0 ** -53
MAX_EXP, EXP_TABLE_SIZE = 6.0, 1000  # word2vec.c's sigmoid table: sigma(x) at 1000 points of [-6, 6)
_GRID = (np.arange(EXP_TABLE_SIZE) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
EXP_TABLE = (np.exp(_GRID) / (np.exp(_GRID) + 1)).astype(np.float32)


@numba.njit(inline="always", cache=True)
def draw(state):  # pragma: no cover - compiled
    state = state * _MULTIPLIER + _INCREMENT
    return state, (state >> np.uint64(11)) * _SCALE


@numba.njit(inline="always", cache=True)
def sentence_start(sentences, pos):  # pragma: no cover - compiled
    """The first position at or after ``pos`` that starts a sentence (``len`` if none)."""
    n = sentences.shape[0]
    while 0 < pos < n and sentences[pos] == sentences[pos - 1]:
        pos += 1
    return pos


@numba.njit(inline="always", cache=True)
def _push(i, scaled, small, large, n_small, n_large):  # pragma: no cover - compiled
    """Put bucket ``i`` on the stack of under-full (``scaled < 1``) or of full buckets; returns the new sizes."""
    if scaled[i] < 1.0:
        small[n_small] = i
        return n_small + 1, n_large
    large[n_large] = i
    return n_small, n_large + 1


@numba.njit(cache=True)
def alias_table(cdf):  # pragma: no cover - compiled
    """Walker's alias table (Vose's construction) of the distribution with cumulative sums ``cdf``: a draw is
    ``i = floor(u V)``, then ``i`` if ``frac(u V) < prob[i]`` else ``alias[i]`` -- O(1), exact."""
    size = cdf.shape[0]
    scaled = np.empty(size)
    previous = 0.0
    for i in range(size):
        scaled[i] = (cdf[i] - previous) * size
        previous = cdf[i]
    prob = np.ones(size)
    alias = np.arange(size)
    small = np.empty(size, np.int64)
    large = np.empty(size, np.int64)
    n_small = n_large = 0
    for i in range(size):
        n_small, n_large = _push(i, scaled, small, large, n_small, n_large)
    while n_small > 0 and n_large > 0:
        n_small -= 1
        n_large -= 1
        s, g = small[n_small], large[n_large]
        prob[s], alias[s] = scaled[s], g
        scaled[g] = scaled[g] + scaled[s] - 1.0
        n_small, n_large = _push(g, scaled, small, large, n_small, n_large)
    return prob, alias  # entries left in either stack keep prob 1 (rounding)


@numba.njit(inline="always", cache=True)
def draw_noise(prob, alias, u):  # pragma: no cover - compiled
    x = u * prob.shape[0]
    i = min(int(x), prob.shape[0] - 1)
    return i if x - i < prob[i] else alias[i]


@numba.njit(inline="always", cache=True)
def draw_targets(targets, target, prob, alias, negative, state):  # pragma: no cover - compiled
    """``targets[0] = target``, then the ``negative`` noise draws that differ from it; returns ``(count, state)``."""
    targets[0] = target
    count = 1
    for _ in range(negative):
        state, u = draw(state)
        t = draw_noise(prob, alias, u)
        if t != target:  # word2vec.c skips a noise word equal to the target
            targets[count] = t
            count += 1
    return count, state


@numba.njit(inline="always", cache=True)
def prefetch_rows(w, rows, count, dim):  # pragma: no cover - compiled
    """Ask for the cache lines of ``w[rows[k], :dim]`` (``k < count``) before they are used."""
    for k in range(count):
        for d in range(0, dim, 16):  # 16 floats: one 64-byte line
            prefetch_for_write(w, rows[k], d)
        prefetch_for_write(w, rows[k], dim - 1)  # the last line of a row that does not start on a line


@numba.njit(inline="always", fastmath=True, cache=True, error_model="numpy")
def train_targets(w_out, v, e, targets, count, alpha, scored, dim):  # pragma: no cover - compiled
    loss = 0.0
    for k in range(count):
        t = targets[k]
        label = 1.0 if k == 0 else 0.0
        f = np.float32(0.0)
        for d in range(dim):
            f += v[d] * w_out[t, d]
        if f >= MAX_EXP:  # word2vec.c: sigma from the table, 0 or 1 beyond +-MAX_EXP
            s = np.float32(1.0)
        elif f <= -MAX_EXP:
            s = np.float32(0.0)
        else:
            s = EXP_TABLE[int((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2))]
        if scored:  # exact -log sigma(+-f); the log costs more than the rest of a CBOW target
            x = f if label > 0.5 else -f
            loss += np.log1p(np.exp(-x)) if x > -30.0 else -x
        g = np.float32(alpha * (label - s))
        for d in range(dim):
            u = w_out[t, d]
            e[d] += g * u
            w_out[t, d] = u + g * v[d]
    return loss


@numba.njit(parallel=True, fastmath=True, nogil=True, cache=True, error_model="numpy")
def train(w_in, w_out, ids, sentences, keep, cdf, cbow, cbow_mean, window, shrink, negative, alpha_start,
          alpha_end, seed, n_threads, loss_every, dim):  # pragma: no cover - compiled
    n = ids.shape[0]  # the vectors are the first ``dim`` columns of each row (rows may be padded)
    prob64, alias64 = alias_table(cdf)
    prob, alias = prob64.astype(np.float32), alias64.astype(np.int32)  # half the cache lines per noise draw
    losses = np.zeros(n_threads)
    examples = np.zeros(n_threads, np.int64)
    scored_examples = np.zeros(n_threads, np.int64)
    for r in numba.prange(n_threads):
        lo, hi = sentence_start(sentences, n * r // n_threads), sentence_start(sentences, n * (r + 1) // n_threads)
        state = np.uint64(seed) * np.uint64(1000003) + np.uint64(r + 1)
        kept = np.empty(hi - lo, np.int64)
        kept_sentence = np.empty(hi - lo, np.int64)
        m = 0
        for p in range(lo, hi):
            state, u = draw(state)
            if u < keep[ids[p]]:
                kept[m], kept_sentence[m] = ids[p], sentences[p]
                m += 1
        e = np.empty(dim, np.float32)
        v = np.empty(dim, np.float32)
        targets = np.empty(negative + 1, np.int64)
        loss = 0.0
        count = scored_count = 0
        alpha = alpha_start + (alpha_end - alpha_start) * lo / max(n, 1)  # linear across the chunk's positions
        alpha_step = (alpha_end - alpha_start) * (hi - lo) / max(n, 1) / max(m, 1)
        for c in range(m):
            alpha += alpha_step
            b = window
            if shrink:
                state, u = draw(state)
                b = 1 + min(int(u * window), window - 1)
            first, stop = max(0, c - b), min(m, c + b + 1)
            while kept_sentence[first] != kept_sentence[c]:  # the window stops at the sentence's ends
                first += 1
            while kept_sentence[stop - 1] != kept_sentence[c]:
                stop -= 1
            if c + window + 1 < m:  # the word that enters the window next
                prefetch_rows(w_in, kept[c + window + 1:], 1, dim)
            scored = c % loss_every == 0  # the loss is measured on every loss_every-th centre's examples
            if cbow:
                width = stop - first - 1
                if width == 0:
                    continue
                n_targets, state = draw_targets(targets, kept[c], prob, alias, negative, state)
                prefetch_rows(w_out, targets, n_targets, dim)
                v[:] = 0.0
                for j in range(first, stop):
                    # a row index read into a local: read inside the loop, the compiler must assume the stores to v
                    # may change ``kept`` and reloads it every iteration, which stops vectorisation (2.6x slower)
                    i = kept[j]
                    if j != c:
                        for d in range(dim):
                            v[d] += w_in[i, d]
                if cbow_mean:
                    inverse = np.float32(1.0 / width)
                    for d in range(dim):
                        v[d] *= inverse
                e[:] = 0.0
                loss += train_targets(w_out, v, e, targets, n_targets, alpha, scored, dim)
                count += 1
                scored_count += scored
                for j in range(first, stop):
                    i = kept[j]
                    if j != c:
                        for d in range(dim):
                            w_in[i, d] += e[d]
            else:
                for j in range(first, stop):
                    if j == c:
                        continue
                    i = kept[j]
                    n_targets, state = draw_targets(targets, kept[c], prob, alias, negative, state)
                    prefetch_rows(w_out, targets, n_targets, dim)
                    e[:] = 0.0
                    for d in range(dim):
                        v[d] = w_in[i, d]
                    loss += train_targets(w_out, v, e, targets, n_targets, alpha, scored, dim)
                    count += 1
                    scored_count += scored
                    for d in range(dim):
                        w_in[i, d] += e[d]
        losses[r] = loss
        examples[r] = count
        scored_examples[r] = scored_count
    return losses.sum(), examples.sum(), scored_examples.sum()
