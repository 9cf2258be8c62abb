"""Sparse non-negative matrix (SNM) language model (Shazeer, Pelemans & Chelba 2015; Pelemans et al. 2016, TACL),
with the adjustment function fitted by multinomial loss on held-out data (Chelba & Pelemans 2015).

A history h fires a set F(h) of binary features (n-gram contexts of every order, skip-grams). Each feature f has a row
of the count matrix, the relative frequency of the word that followed it in training, and every entry is scaled by a
learned positive adjustment::

    M_fw = exp(A(f, w)) * C(f, w) / C(f, *)
    p(w | h) = (u / |V| + sum_{f in F(h)} M_fw) / (u + sum_{f in F(h)} sum_w' M_fw')

``C(f, w)`` counts how often word w followed feature f in training and ``C(f, *) = sum_w C(f, w)``; ``u = exp(theta_u)``
weighs a uniform floor (a feature that fires everywhere, so that no word of the vocabulary gets probability 0). The
adjustment is a linear model on unlexicalised metafeatures (Chelba & Pelemans found them as good as lexicalised ones)::

    A(f, w) = sum over the elementary metafeatures and all their pairwise conjunctions of theta
    elementary: t = feature template (e.g. "3-gram", "skip r=1 s=2"), c = bucket(C(f, *)),
                d = bucket(number of distinct words seen after f), b = bucket(C(f, w)),
                e = bucket(number of distinct words seen before w)   (Kneser-Ney's continuation count)
    bucket(x) = min(floor(resolution * log2 x), n_buckets - 1)

The metaparameters theta are fitted by AdaGrad on the multinomial loss ``-log p(w | h)`` of held-out text (plus a
small L2 penalty), with the counts taken from the training text only. Because the metafeatures are unlexicalised,
``A`` is a table over ``(t, c, d, b, e)`` cells, and a feature's normaliser ``sum_w' M_fw'`` is a sum over its few
``(b, e)`` buckets, so a full-batch gradient step costs a few ``bincount`` calls over the held-out (position,
feature) pairs.

Features are *templates*: ``r`` remote words, then ``s`` skipped words, then ``a`` adjacent words, then the predicted
word. An n-gram context of k words is ``r=0, s=0, a=k`` (``"ngram:k"``; k = 0 is the unigram feature, which always
fires); a skip-gram is ``r >= 1, s >= 1`` (``"skip:r:s:a"``). A *tied* skip-gram fires one feature for any skip in a
range (``"skip:r:s1-s2:a"``), so the remote words count alike at every distance in the range. A feature fires only
where its whole span lies inside the current segment (sentence in sentence mode; the stream in stream mode).

Input handling (vocabulary, ``<s>``, ``</s>``, ``<unk>``, sentence or stream mode) is the Kneser-Ney baseline's
(:class:`recurrentkit.baselines.ngram.TokenModel`), so the two models score the same events. Everything is vectorised
with numpy: feature and (feature, word) keys are int64 numbers grouped by sorting, no per-n-gram Python object.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .ngram import UNK, TokenModel, _group, _is_int

__all__ = ["DEFAULT_SKIPS", "SNMTemplate", "SparseNonNegativeLM", "parse_template"]

#: The skip-gram templates used by default (besides the n-grams up to ``order``): one and two remote words at skips
#: 1-3, one remote word after a skip and one adjacent word, and tied long skips of one remote word.
DEFAULT_SKIPS = ("skip:1:1:0", "skip:1:2:0", "skip:1:3:0", "skip:2:1:0", "skip:2:2:0", "skip:1:1:1",
                 "skip:1:2:1", "skip:1:4-6:0", "skip:1:7-10:0")


@dataclass(frozen=True)
class SNMTemplate:
    """A feature template: ``remote`` words, then a skip of ``skip_lo..skip_hi`` words, then ``adjacent`` words, then
    the predicted word. ``skip_lo < skip_hi`` ties the skips (one feature for any skip in the range)."""

    remote: int
    skip_lo: int
    skip_hi: int
    adjacent: int

    @property
    def name(self) -> str:
        if self.remote == 0:
            return f"ngram:{self.adjacent}"
        s = str(self.skip_lo) if self.skip_lo == self.skip_hi else f"{self.skip_lo}-{self.skip_hi}"
        return f"skip:{self.remote}:{s}:{self.adjacent}"

    @property
    def span(self) -> int:
        """Context words reached back, the longest skip included."""
        return self.remote + self.skip_hi + self.adjacent


def parse_template(spec: str | SNMTemplate) -> SNMTemplate:
    """``"ngram:k"`` (k context words) or ``"skip:r:s:a"`` / ``"skip:r:s1-s2:a"`` (r remote, s skipped, a adjacent)."""
    if isinstance(spec, SNMTemplate):
        return spec
    m = re.fullmatch(r"ngram:(\d+)", str(spec).strip())
    if m:
        return SNMTemplate(0, 0, 0, int(m.group(1)))
    m = re.fullmatch(r"skip:(\d+):(\d+)(?:-(\d+))?:(\d+)", str(spec).strip())
    if m:
        r, lo, hi, a = int(m.group(1)), int(m.group(2)), int(m.group(3) or m.group(2)), int(m.group(4))
        if r < 1 or lo < 1 or hi < lo:
            raise ValueError(f"skip-gram template {spec!r}: needs remote >= 1 and 1 <= s1 <= s2")
        return SNMTemplate(r, lo, hi, a)
    raise ValueError(f"bad feature template {spec!r}: expected 'ngram:K', 'skip:R:S:A' or 'skip:R:S1-S2:A'")


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for every (s, n): the gather index of CSR rows."""
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total)


def _unique_counts(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``key`` and their counts, by a plain sort (faster than ``argsort`` when no inverse
    is needed, and than ``np.unique``, which hashes int64 keys in numpy >= 2.3)."""
    sk = np.sort(key)
    if sk.size == 0:
        return sk, np.empty(0, dtype=np.int64)
    new = np.empty(sk.size, dtype=bool)
    new[0] = True
    np.not_equal(sk[1:], sk[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return sk[starts], np.diff(np.append(starts, sk.size))


def _find(sorted_keys: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Index of each ``key`` in ``sorted_keys`` (-1 where absent or where ``key < 0``)."""
    if sorted_keys.size == 0:
        return np.full(key.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_keys, key)
    pos_c = np.minimum(pos, sorted_keys.size - 1)
    return np.where((key >= 0) & (sorted_keys[pos_c] == key), pos_c, -1)


class SparseNonNegativeLM(TokenModel):
    """Sparse non-negative matrix LM with n-gram and skip-gram features and a metafeature adjustment function.

    Args:
        order: n-gram features of every order up to ``order`` (contexts of 0 .. order-1 words).
        skips: skip-gram templates (``"skip:r:s:a"``, ``"skip:r:s1-s2:a"``, see :func:`parse_template`);
            ``()`` for an n-gram-only model. Default :data:`DEFAULT_SKIPS`.
        vocab, eos, unk: as for :class:`~recurrentkit.baselines.KneserNeyLM` (same input modes and conventions).
        resolution: count buckets per octave (``bucket(x) = floor(resolution * log2 x)``).
        max_count: counts above it share the last bucket.
        steps, lr: full-batch AdaGrad steps and learning rate for the metaparameters.
        heldout_fraction: when ``fit`` gets no held-out data, this last fraction of the training text is held out to
            fit the adjustment, then the counts are taken again over all of the training text.
        target_diversity: use the word-diversity metafeature e (``N1+(. w)``, Kneser-Ney's continuation count).
        l2: L2 penalty ``l2 * sum theta^2`` on the metaparameters (all but the bias and the uniform floor's weight).

    After ``fit``: ``templates``, ``vocab_size``, ``features_`` (feature types per template), ``links_`` ((feature,
    word) pairs per template), ``heldout_loss_`` (per-step mean held-out loss, nats), ``fit_seconds``.
    """

    def __init__(
        self,
        order: int = 5,
        skips: Sequence[str | SNMTemplate] | None = None,
        *,
        vocab: Sequence[str] | int | None = None,
        eos: str | int | None = None,
        unk: str | int | None = UNK,
        resolution: int = 1,
        max_count: int = 2**16,
        steps: int = 60,
        lr: float = 0.3,
        heldout_fraction: float = 0.1,
        target_diversity: bool = True,
        l2: float = 1e-4,
    ) -> None:
        if not _is_int(order) or order < 1:
            raise ValueError(f"order must be an int >= 1, got {order!r}")
        super().__init__(vocab=vocab, eos=eos, unk=unk)
        self.order = int(order)
        skips = DEFAULT_SKIPS if skips is None else skips
        if isinstance(skips, str):
            raise TypeError("skips must be a list of templates, not one string")
        templates = [SNMTemplate(0, 0, 0, k) for k in range(self.order)] + [parse_template(s) for s in skips]
        if len({t for t in templates}) != len(templates):
            raise ValueError(f"duplicate feature templates in {[t.name for t in templates]}")
        self.templates = tuple(templates)
        if not _is_int(resolution) or resolution < 1:
            raise ValueError(f"resolution must be an int >= 1, got {resolution!r}")
        if max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {max_count}")
        if not 0.0 < heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in (0, 1), got {heldout_fraction}")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.l2 = float(l2)
        if steps < 0 or lr <= 0:
            raise ValueError(f"need steps >= 0 and lr > 0, got steps={steps}, lr={lr}")
        self.resolution, self.max_count = int(resolution), int(max_count)
        self.n_buckets = int(math.floor(self.resolution * math.log2(self.max_count))) + 1
        self.steps, self.lr, self.heldout_fraction = int(steps), float(lr), float(heldout_fraction)
        self.target_diversity = bool(target_diversity)
        # metaparameters: one array per subset of the cell axes (t, c, d, b, e): bias, elementary, pairwise
        axes = [i for i, n in enumerate(self._shape) if n > 1]
        self._subsets = ((),) + tuple((i,) for i in axes) + tuple((i, j) for i in axes for j in axes if i < j)
        self.theta: dict[tuple[int, ...], np.ndarray] | None = None
        self.theta_uniform = 0.0

    # ------------------------------------------------------------------ metafeatures
    @property
    def _shape(self) -> tuple[int, int, int, int, int]:
        """Cells ``(template, bucket C(f,*), bucket diversity(f), bucket C(f,w), bucket diversity(w))``."""
        nb = self.n_buckets
        return (len(self.templates), nb, nb, nb, nb if self.target_diversity else 1)

    def bucket(self, x: np.ndarray) -> np.ndarray:
        """Count bucket ``min(floor(resolution * log2 x), n_buckets - 1)`` of counts ``x >= 1``."""
        x = np.maximum(np.asarray(x, dtype=np.float64), 1.0)
        return np.minimum(np.floor(self.resolution * np.log2(x) + 1e-9), self.n_buckets - 1).astype(np.int64)

    def _init_theta(self) -> None:
        shape = self._shape
        self.theta = {s: np.zeros(tuple(shape[i] for i in s)) for s in self._subsets}
        self.theta_uniform = 0.0

    def adjustment_table(self) -> np.ndarray:
        """The dense table of ``A`` over all cells (see ``_shape``); for inspection and tests of small models."""
        if self.theta is None:
            self._init_theta()
        shape = self._shape
        phi = np.zeros(shape)
        for s, th in self.theta.items():
            phi += th.reshape(tuple(shape[i] if i in s else 1 for i in range(len(shape))))
        return phi

    def _cell_index(self, q: np.ndarray) -> dict[tuple[int, ...], np.ndarray]:
        """For flat cell codes ``q``: the index into each metaparameter array ``theta[s]``."""
        coords = np.unravel_index(q, self._shape)
        return {s: (np.ravel_multi_index(tuple(coords[a] for a in s), th.shape) if s else np.zeros(q.size, np.int64))
                for s, th in self.theta.items()}

    def _adjust(self, index: dict[tuple[int, ...], np.ndarray]) -> np.ndarray:
        """``exp(A)`` at the cells whose indices ``_cell_index`` gave."""
        phi = sum(self.theta[s].reshape(-1)[i] for s, i in index.items())
        return np.exp(phi)

    # ------------------------------------------------------------------ features
    def _levels(self, seq: np.ndarray, seg: np.ndarray, fitting: bool) -> list[np.ndarray]:
        """``G[m][p]``: dense id of the m words ending at position p (-1 where the span leaves the segment or where
        the m-gram was never seen in training). ``G[1]`` is the word id itself; ``G[0]`` is all zeros."""
        top = max(max(t.remote, t.adjacent) for t in self.templates)
        n = seq.size
        levels = [np.zeros(n, dtype=np.int64), seq.astype(np.int64)]
        if fitting:
            self._level_keys = [np.zeros(1, np.int64), np.arange(self._B, dtype=np.int64)]
        for m in range(2, top + 1):
            cur = np.full(n, -1, dtype=np.int64)
            if n >= m:
                prev = levels[m - 1][m - 2 : n - 1]
                ok = (prev >= 0) & (seg[: n - m + 1] == seg[m - 1 :])
                key = np.where(ok, prev * self._B + seq[m - 1 :], -1)
                if fitting:
                    uniq, _, inv, _ = _group(key[ok])
                    self._level_keys.append(uniq)
                    cur[m - 1 :][ok] = inv
                else:
                    cur[m - 1 :] = _find(self._level_keys[m], key)
            elif fitting:
                self._level_keys.append(np.empty(0, np.int64))
            levels.append(cur)
        return levels

    def _fire(self, seq: np.ndarray, seg: np.ndarray, targets: np.ndarray, levels: list[np.ndarray], j: int
              ) -> tuple[np.ndarray, np.ndarray]:
        """(index into ``targets``, feature key) of every firing of template ``j`` (deduplicated per position)."""
        t = self.templates[j]
        n_adj = self._level_keys[t.adjacent].size
        adj = levels[t.adjacent][targets - 1] if t.adjacent else np.zeros(targets.size, dtype=np.int64)
        idx_all, key_all = [], []
        for s in range(t.skip_lo, t.skip_hi + 1) if t.remote else [0]:
            start = targets - (t.adjacent + s + t.remote)
            ok = start >= 0
            ok[ok] = seg[start[ok]] == seg[targets[ok]]
            if t.remote:
                rem = np.full(targets.size, -1, dtype=np.int64)
                rem[ok] = levels[t.remote][targets[ok] - 1 - t.adjacent - s]
                key = rem * n_adj + adj
                ok &= (rem >= 0) & (adj >= 0)
            else:
                key = adj
                ok &= adj >= 0
            idx_all.append(np.flatnonzero(ok))
            key_all.append(key[ok])
        idx, key = np.concatenate(idx_all), np.concatenate(key_all)
        if len(idx_all) > 1 and idx.size:  # tied skips: one firing per (position, feature)
            span = int(key.max()) + 1
            if targets.size * span < 2**62:
                both, _ = _unique_counts(idx * span + key)
                idx, key = both // span, both % span
            else:
                order = np.lexsort((key, idx))
                idx, key = idx[order], key[order]
                keep = np.ones(idx.size, dtype=bool)
                keep[1:] = (idx[1:] != idx[:-1]) | (key[1:] != key[:-1])
                idx, key = idx[keep], key[keep]
        return idx, key

    @staticmethod
    def _segments(seq: np.ndarray, bos: int) -> tuple[np.ndarray, np.ndarray]:
        return np.cumsum(seq == bos), np.flatnonzero(seq != bos)

    # ------------------------------------------------------------------ counting
    def _count(self, seq: np.ndarray) -> None:
        """The count matrix: per template, sorted feature keys with C(f,*) and diversity, sorted (feature, word) keys
        with C(f,w), and per feature the link-count-bucket rows (bucket, sum of C(f,w) in it) of its normaliser."""
        seg, targets = self._segments(seq, self.bos_id)
        levels = self._levels(seq, seg, fitting=True)
        B = self._B
        nb, ne = self.n_buckets, self._shape[4]
        # diversity of each word: the number of distinct words seen right before it (Kneser-Ney's N1+(. w))
        bigrams, _ = _unique_counts(seq[targets - 1] * B + seq[targets])
        self._word_div = np.bincount(bigrams % B, minlength=B)
        word_e = self.bucket(self._word_div) if ne > 1 else np.zeros(B, dtype=np.int64)
        self._word_e = word_e
        feat_keys, pair_keys, pair_counts = [], [], []
        cstar, div, cell, trip_f, trip_b, trip_r = [], [], [], [], [], []
        offset = 0
        for j, t in enumerate(self.templates):
            idx, key = self._fire(seq, seg, targets, levels, j)
            n_keys = max(self._level_keys[t.remote].size if t.remote else 1, 1) * max(
                self._level_keys[t.adjacent].size, 1)
            if n_keys * B >= 2**62:
                raise ValueError(f"template {t.name}: (feature, word) keys overflow int64; use fewer/shorter templates")
            pk, pc = _unique_counts(key * B + seq[targets[idx]])
            fk_of_pair = pk // B
            new = np.ones(pk.size, dtype=bool)
            new[1:] = fk_of_pair[1:] != fk_of_pair[:-1]
            starts = np.flatnonzero(new)
            fk = fk_of_pair[starts]
            f_of_pair = np.cumsum(new) - 1
            cs = np.add.reduceat(pc, starts) if pc.size else np.empty(0, np.int64)
            dv = np.diff(np.append(starts, pk.size))
            # normaliser rows: sum of C(f, w) per (feature, link-count bucket, word-diversity bucket)
            tk, _, inv, _ = _group(f_of_pair * (nb * ne) + self.bucket(pc) * ne + word_e[pk % B])
            sums = np.bincount(inv, weights=pc, minlength=tk.size)
            tf = tk // (nb * ne)
            feat_keys.append(fk)
            pair_keys.append(pk)
            pair_counts.append(pc.astype(np.float64))
            cstar.append(cs.astype(np.float64))
            div.append(dv)
            cell.append((((j * nb + self.bucket(cs)) * nb + self.bucket(dv)) * nb) * ne)
            trip_f.append(tf + offset)
            trip_b.append(tk % (nb * ne))
            trip_r.append(sums / cs[tf])
            offset += fk.size
        self._feat_keys, self._pair_keys, self._pair_counts = feat_keys, pair_keys, pair_counts
        self._feat_offset = np.cumsum([0] + [k.size for k in feat_keys])
        self._cstar = np.concatenate(cstar)
        self._div = np.concatenate(div)
        self._cell = np.concatenate(cell)  # flat index of cell (t, c, d, b=0, e=0) per global feature
        self._trip_f = np.concatenate(trip_f)
        self._trip_q = self._cell[self._trip_f] + np.concatenate(trip_b)
        self._trip_r = np.concatenate(trip_r)
        self._trip_start = np.searchsorted(self._trip_f, np.arange(offset + 1))
        self.features_ = [int(k.size) for k in feat_keys]
        self.links_ = [int(k.size) for k in pair_keys]

    def _activate(self, seq: np.ndarray) -> tuple[np.ndarray, ...]:
        """The features that fire at each predicted position of ``seq`` and were seen in training.

        Returns ``(n, act_pos, act_f, link_pos, link_q, link_r)``: n predicted positions; every (position, global
        feature) firing; and the firings whose (feature, predicted word) link was seen, with their cell index
        ``q`` into the flat adjustment table and ``C(f,w) / C(f,*)``.
        """
        seg, targets = self._segments(seq, self.bos_id)
        levels = self._levels(seq, seg, fitting=False)
        B = self._B
        act_pos, act_f, link_pos, link_q, link_r = [], [], [], [], []
        for j in range(len(self.templates)):
            idx, key = self._fire(seq, seg, targets, levels, j)
            f = _find(self._feat_keys[j], key)
            hit = f >= 0
            idx, key, f = idx[hit], key[hit], f[hit]
            g = f + self._feat_offset[j]
            act_pos.append(idx)
            act_f.append(g)
            p = _find(self._pair_keys[j], key * B + seq[targets[idx]])
            seen = p >= 0
            c = self._pair_counts[j][p[seen]]
            link_pos.append(idx[seen])
            link_q.append(self._cell[g[seen]] + self.bucket(c) * self._shape[4] + self._word_e[seq[targets[idx[seen]]]])
            link_r.append(c / self._cstar[g[seen]])
        cat = np.concatenate
        return targets.size, cat(act_pos), cat(act_f), cat(link_pos), cat(link_q), cat(link_r)

    # ------------------------------------------------------------------ the adjustment function
    def _train_adjustment(self, seq: np.ndarray) -> None:
        """Full-batch AdaGrad on the mean held-out loss ``-log p(w | h)`` over the metaparameters."""
        n, act_pos, act_f, link_pos, link_q, link_r = self._activate(seq)
        # the normaliser rows of the features that fire in the held-out text, renumbered compactly
        feats, _, act_fl, _ = _group(act_f)
        lens = self._trip_start[feats + 1] - self._trip_start[feats]
        rows = _ranges(self._trip_start[feats], lens)
        loc_f = np.repeat(np.arange(feats.size), lens)
        loc_q, loc_r = self._trip_q[rows], self._trip_r[rows]
        V = self.vocab_size
        self._init_theta()
        # the adjustment is needed only at the cells these rows and links use
        cells, _, inv, _ = _group(np.concatenate([loc_q, link_q]))
        loc_u, link_u = inv[: loc_q.size], inv[loc_q.size :]
        index = self._cell_index(cells)
        accum = {s: np.zeros_like(th) for s, th in self.theta.items()}
        accum_u = 0.0
        self.heldout_loss_ = []
        for step in range(self.steps + 1):
            E = self._adjust(index)
            eu = math.exp(self.theta_uniform)
            rw = E[loc_u] * loc_r
            z = np.bincount(loc_f, weights=rw, minlength=feats.size)
            den = eu + np.bincount(act_pos, weights=z[act_fl], minlength=n)
            lw = E[link_u] * link_r
            num = eu / V + np.bincount(link_pos, weights=lw, minlength=n)
            self.heldout_loss_.append(float(np.mean(np.log(den) - np.log(num))))
            if step == self.steps:
                break
            inv_den, inv_num = 1.0 / (den * n), 1.0 / (num * n)
            wf = np.bincount(act_fl, weights=inv_den[act_pos], minlength=feats.size)
            g = np.bincount(loc_u, weights=wf[loc_f] * rw, minlength=cells.size)
            g -= np.bincount(link_u, weights=lw * inv_num[link_pos], minlength=cells.size)
            g_u = eu * (inv_den.sum() - inv_num.sum() / V)
            for s, th in self.theta.items():
                gs = np.bincount(index[s], weights=g, minlength=th.size).reshape(th.shape)
                if s:
                    gs += 2.0 * self.l2 * th
                accum[s] += gs * gs
                th -= self.lr * gs / (np.sqrt(accum[s]) + 1e-8)
            accum_u += g_u * g_u
            self.theta_uniform -= self.lr * g_u / (math.sqrt(accum_u) + 1e-8)

    def _finalise(self) -> None:
        """Per-feature normalisers ``sum_w M_fw`` under the fitted adjustment."""
        cells, _, inv, _ = _group(self._trip_q)
        self._z = np.bincount(self._trip_f, weights=self._adjust(self._cell_index(cells))[inv] * self._trip_r,
                              minlength=self._cstar.size)

    # ------------------------------------------------------------------ estimation
    def _split(self, seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Training head and held-out tail of an encoded sequence (the tail starts at a segment start, or gets a
        ``<s>`` of its own in stream mode)."""
        cut = int(seq.size * (1.0 - self.heldout_fraction))
        if self.mode == "sentence":
            starts = np.flatnonzero(seq == self.bos_id)
            cut = int(starts[np.searchsorted(starts, cut)]) if (starts >= cut).any() else int(starts[-1])
            if cut == 0:
                raise ValueError("the training data has a single sentence: pass held-out data to fit()")
            return seq[:cut], seq[cut:]
        return seq[:cut], np.concatenate([[self.bos_id], seq[cut:]])

    def fit(self, data: object, heldout: object | None = None) -> SparseNonNegativeLM:
        """Count features on ``data`` and fit the adjustment function on ``heldout`` (same mode).

        Without ``heldout``, the last ``heldout_fraction`` of ``data`` is held out: counts from the rest fit the
        adjustment, then the counts are taken again over all of ``data``. Returns self.
        """
        t0 = time.perf_counter()
        seq = self._encode(data, fitting=True)
        self._B = self.vocab_size + 1
        if heldout is None:
            head, tail = self._split(seq)
            self._count(head)
            self._train_adjustment(tail)
            self._count(seq)
        else:
            held = self._encode(heldout)
            self._count(seq)
            self._train_adjustment(held)
        self._finalise()
        self.fit_seconds = time.perf_counter() - t0
        return self

    # ------------------------------------------------------------------ scoring
    def _score_encoded(self, seq: np.ndarray) -> np.ndarray:
        n, act_pos, act_f, link_pos, link_q, link_r = self._activate(seq)
        eu = math.exp(self.theta_uniform)
        den = eu + np.bincount(act_pos, weights=self._z[act_f], minlength=n)
        lw = self._adjust(self._cell_index(link_q)) * link_r
        num = eu / self.vocab_size + np.bincount(link_pos, weights=lw, minlength=n)
        return np.log(num) - np.log(den)

    def score(self, data: object) -> np.ndarray:
        """Natural-log probability of every predicted token of ``data`` (same mode and events as ``KneserNeyLM``)."""
        self._check_fitted()
        return self._score_encoded(self._encode(data))

    def perplexity(self, data: object) -> float:
        """``exp(-mean log P)`` over the predicted tokens of ``data``."""
        return float(math.exp(-self.score(data).mean()))

    def distribution(self, context: Sequence = ()) -> np.ndarray:
        """``P(w | context)`` for every internal id w (index ``bos_id`` holds 0); sums to 1.

        ``context`` is a list of words or ids; ``"<s>"`` (or ``bos_id``) marks a segment start and hides what is
        before it. A context without ``<s>`` is taken to follow one.
        """
        self._check_fitted()
        ids = [self.bos_id]
        for tok in context:
            if (isinstance(tok, str) and tok == "<s>") or (_is_int(tok) and int(tok) == self.bos_id):
                ids = [self.bos_id]
            else:
                ids.append(int(self._ids([tok], "str" if isinstance(tok, str) else "int")[0]))
        seq = np.asarray(ids + [0], dtype=np.int64)  # the predicted word is a placeholder: only the context matters
        seg, targets = self._segments(seq, self.bos_id)
        levels = self._levels(seq, seg, fitting=False)
        eu = math.exp(self.theta_uniform)
        p = np.full(self._B, eu / self.vocab_size)
        den = eu
        B = self._B
        for j in range(len(self.templates)):
            idx, key = self._fire(seq, seg, targets[-1:], levels, j)
            f = _find(self._feat_keys[j], key)
            for k, fj in zip(key[f >= 0], f[f >= 0]):
                g = fj + self._feat_offset[j]
                lo, hi = np.searchsorted(self._pair_keys[j], [k * B, (k + 1) * B])
                c = self._pair_counts[j][lo:hi]
                words = self._pair_keys[j][lo:hi] - k * B
                q = self._cell[g] + self.bucket(c) * self._shape[4] + self._word_e[words]
                p[words] += self._adjust(self._cell_index(q)) * c / self._cstar[g]
                den += self._z[g]
        p /= den
        p[self.bos_id] = 0.0
        return p

    def log_prob(self, context: Sequence, word: str | int) -> float:
        """Natural-log ``P(word | context)``."""
        if word == "<s>":
            raise ValueError("'<s>' is context only and is never predicted")
        self._check_fitted()
        w = int(self._ids([word], "str" if isinstance(word, str) else "int")[0])
        return float(np.log(self.distribution(context)[w]))
