"""Interpolated modified Kneser-Ney n-gram language model, built the way SRILM builds it.

``KneserNeyLM(order=5)`` reproduces ``ngram-count -order 5 -kndiscount -interpolate -unk`` with no count cut-offs
(``-gt1min 1 ... -gt5min 1``). For an n-gram ``h w`` of order k with (modified) count c and context total
``T(h) = sum_v c(h v)``::

    P_k(w | h) = (c(h w) - D_k(c)) / T(h) + gamma(h) * P_{k-1}(w | h')        h' = h without its first word
    gamma(h)   = (D_k1 N1(h .) + D_k2 N2(h .) + D_k3+ N3+(h .)) / T(h)
    P_0(w)     = 1 / |V|                                                       V = predictable words (no <s>)

with three discounts per order from the count-of-counts n_1..n_4 of that order (Chen & Goodman 1998)::

    Y = n1 / (n1 + 2 n2),  D1 = 1 - 2 Y n2 / n1,  D2 = 2 - 3 Y n3 / n2,  D3+ = 3 - 4 Y n4 / n3.

The highest order uses raw counts; every lower order uses continuation counts ``N1+(. w_2..w_k)`` (the number of
distinct words seen to the left), except n-grams that start with ``<s>``, which have no left context and keep their
raw counts. The count-of-counts of a lower order are taken over those modified counts. A context never seen at order
k backs off to order k-1 with weight 1.

Counting is vectorised: each order's n-gram types get dense ids from ``np.unique`` over int64 keys
``prefix_type * B + word`` (B = number of internal ids), so no per-n-gram Python object is ever built.

Two input modes, chosen by the shape of the data:

* **sentence** (a list of token lists): SRILM's convention. Each sentence becomes ``<s> w_1 .. w_n </s>``; ``<s>`` is
  context only (never predicted), ``</s>`` is predicted and counted, and no n-gram crosses a sentence boundary.
* **stream** (one flat list/array of tokens, e.g. with an ``<eos>`` word per line, as the neural LMs read a corpus):
  context crosses lines. The stream is given one leading ``<s>`` (context only), so the first token is predicted from
  ``<s>`` exactly as a sentence-initial word is, and the n-grams at the very start keep raw counts by the ``<s>`` rule
  instead of getting a continuation count of zero. Every token of the stream is predicted.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = ["KneserNeyLM", "find_split", "modified_kn_discounts", "read_corpus"]

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"


def modified_kn_discounts(n1: float, n2: float, n3: float, n4: float) -> tuple[float, float, float]:
    """Chen & Goodman's discounts ``(D1, D2, D3+)`` from the count-of-counts ``n1..n4`` of one order.

    ``Y = n1/(n1 + 2 n2)``, ``D1 = 1 - 2Y n2/n1``, ``D2 = 2 - 3Y n3/n2``, ``D3+ = 3 - 4Y n4/n3``.
    Raises ``ValueError`` when a count-of-counts is zero or a discount comes out negative (as SRILM refuses to).
    """
    if min(n1, n2, n3, n4) <= 0:
        raise ValueError(
            f"modified Kneser-Ney needs n1..n4 > 0, got count-of-counts {(n1, n2, n3, n4)}; "
            "the corpus is too small for this order (pass discounts=... explicitly)"
        )
    y = n1 / (n1 + 2.0 * n2)
    d = (1.0 - 2.0 * y * n2 / n1, 2.0 - 3.0 * y * n3 / n2, 3.0 - 4.0 * y * n4 / n3)
    if min(d) < 0:
        raise ValueError(f"a modified Kneser-Ney discount is negative: {d} from count-of-counts {(n1, n2, n3, n4)}")
    return d


def _group(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(key, return_index, return_inverse, return_counts)`` with an unstable (SIMD quicksort) argsort:
    the index returned is *some* occurrence of each key, not the first, which is all the counting needs."""
    if key.size == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, e, e
    order = np.argsort(key)
    sk = key[order]
    new = np.empty(sk.size, dtype=bool)
    new[0] = True
    np.not_equal(sk[1:], sk[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    inv = np.empty(sk.size, dtype=np.int64)
    inv[order] = np.cumsum(new) - 1
    return sk[starts], order[starts], inv, np.diff(np.append(starts, sk.size))


def _is_int(x: object) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


class TokenModel:
    """The input side every count-based LM here shares: vocabulary, ``<s>``/``</s>``/``<unk>`` handling, and the
    two input modes (sentence: a list of token lists; stream: one flat token sequence). See :class:`KneserNeyLM` for
    the meaning of ``vocab``, ``eos`` and ``unk``; subclasses call ``_encode(data, fitting=True)`` in ``fit``."""

    def __init__(
        self, *, vocab: Sequence[str] | int | None = None, eos: str | int | None = None, unk: str | int | None = UNK
    ) -> None:
        if vocab is not None and not _is_int(vocab) and hasattr(vocab, "tokens"):
            vocab = list(vocab.tokens)  # recurrentkit.data.Vocab (or anything with an id -> token list)
        if isinstance(vocab, str) or not (vocab is None or _is_int(vocab) or isinstance(vocab, Sequence)):
            raise TypeError(f"vocab must be a list of words, a Vocab, an int size or None, got {type(vocab).__name__}")
        if _is_int(vocab) and vocab < 1:
            raise ValueError(f"vocab size must be >= 1, got {vocab}")
        self._vocab_arg = vocab
        self._eos_arg = eos
        self._unk_arg = unk
        self.mode: str | None = None

    # ------------------------------------------------------------------ vocabulary and input
    def _check_fitted(self) -> None:
        if self.mode is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(...) first")

    @staticmethod
    def _inspect(data: object) -> tuple[str, str]:
        """(mode, kind) of ``data``: mode 'sentence'|'stream', kind 'str'|'int'."""
        if isinstance(data, (str, bytes)):
            raise TypeError("data must be a list of tokens or of sentences, not a single string (split it first)")
        if isinstance(data, np.ndarray):
            if data.ndim != 1:
                raise ValueError(f"a token array must be 1-D, got shape {data.shape}")
            if data.dtype.kind in "iu":
                return "stream", "int"
            if data.dtype.kind in "UO":
                data = data.tolist()
            else:
                raise TypeError(f"token arrays must hold ints or strings, got dtype {data.dtype}")
        if not isinstance(data, Sequence):
            raise TypeError(f"data must be a sequence of tokens or of sentences, got {type(data).__name__}")
        if len(data) == 0:
            raise ValueError("data is empty")
        first = data[0]
        if isinstance(first, str):
            return "stream", "str"
        if _is_int(first):
            return "stream", "int"
        if isinstance(first, np.ndarray) or (isinstance(first, Sequence) and not isinstance(first, bytes)):
            for sent in data:
                if len(sent):
                    return "sentence", ("str" if isinstance(sent[0], str) else "int")
            raise ValueError("every sentence in data is empty")
        raise TypeError(f"tokens must be str or int, got {type(first).__name__}")

    def _build_vocab(self, data: Sequence, mode: str, kind: str) -> None:
        vocab, eos, unk = self._vocab_arg, self._eos_arg, self._unk_arg
        if kind == "str" and _is_int(vocab):
            raise TypeError("string data needs vocab=<list of words> or vocab=None, not an int size")
        words: list[str] | None
        if isinstance(vocab, Sequence):
            words = [str(w) for w in vocab]
            if len(set(words)) != len(words):
                raise ValueError("vocab has duplicate words")
        elif vocab is None and kind == "str":
            flat = itertools.chain.from_iterable(data) if mode == "sentence" else data
            words = sorted(set(flat))
        else:
            words = None
        if words is not None:
            if BOS in words:
                raise ValueError(f"{BOS!r} is reserved for the sentence start and must not be in the vocabulary")
            stoi = {w: i for i, w in enumerate(words)}
            if mode == "sentence":
                eos_word = EOS if eos is None else (words[eos] if _is_int(eos) else str(eos))
                if eos_word not in stoi:
                    stoi[eos_word] = len(words)
                    words.append(eos_word)
                self.eos_id = stoi[eos_word]
            else:
                self.eos_id = None
            if unk is not None:
                unk_word = words[unk] if _is_int(unk) else str(unk)
                if unk_word not in stoi:
                    stoi[unk_word] = len(words)
                    words.append(unk_word)
                self.unk_id = stoi[unk_word]
            else:
                self.unk_id = None
            self.words, self._stoi, self.vocab_size = words, stoi, len(words)
        else:
            if _is_int(vocab):
                size = int(vocab)
            else:
                if mode == "sentence":
                    size = max((int(np.max(np.asarray(s))) for s in data if len(s)), default=-1) + 1
                else:
                    size = int(np.max(np.asarray(data))) + 1
            self.words, self._stoi = None, None
            if mode == "sentence":
                if eos is None:
                    self.eos_id = size
                    size += 1
                elif _is_int(eos) and 0 <= eos < size:
                    self.eos_id = int(eos)
                else:
                    raise ValueError(f"eos must be an id in [0, {size}) for id data, got {eos!r}")
            else:
                self.eos_id = None
            self.unk_id = int(unk) if _is_int(unk) else None
            self.vocab_size = size
        self.bos_id = self.vocab_size

    def _ids(self, tokens: Iterable, kind: str) -> np.ndarray:
        """Internal int64 ids of a flat token sequence."""
        if kind == "str":
            if self._stoi is None:
                raise TypeError("this model was fitted on ids without a word list: score ids, not strings")
            stoi, unk = self._stoi, self.unk_id
            tokens = list(tokens)
            try:
                ids = [stoi[w] for w in tokens]
            except KeyError:
                if unk is None:
                    bad = next(w for w in tokens if w not in stoi)
                    raise KeyError(f"word {bad!r} is not in the vocabulary and unk=None") from None
                ids = [stoi.get(w, unk) for w in tokens]
            return np.asarray(ids, dtype=np.int64)
        arr = (
            np.fromiter((int(t) for t in tokens), dtype=np.int64)
            if not isinstance(tokens, np.ndarray)
            else (tokens.astype(np.int64, copy=False))
        )
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            bad = arr[(arr < 0) | (arr >= self.vocab_size)][0]
            raise ValueError(f"token id {int(bad)} is outside the vocabulary [0, {self.vocab_size})")
        return arr

    def _encode(self, data: object, *, fitting: bool = False) -> np.ndarray:
        """Internal id sequence with ``<s>`` at the start of every segment (sentence, or the whole stream)."""
        if not isinstance(data, (str, bytes, np.ndarray, Sequence)) and hasattr(data, "__array__"):
            data = np.asarray(data)  # e.g. a CPU torch tensor of token ids
        mode, kind = self._inspect(data)
        if isinstance(data, np.ndarray) and data.dtype.kind in "UO":
            data = data.tolist()
        if fitting:
            self._build_vocab(data, mode, kind)
            self.mode = mode
        elif mode != self.mode:
            raise ValueError(f"the model was fitted in {self.mode} mode but this data is in {mode} mode")
        if mode == "stream":
            ids = self._ids(data, kind)
            return np.concatenate([np.array([self.bos_id], dtype=np.int64), ids])
        sents = [s for s in data if len(s)]
        lengths = np.fromiter((len(s) for s in sents), dtype=np.int64, count=len(sents))
        flat = (
            self._ids(itertools.chain.from_iterable(sents), kind)
            if kind == "str"
            else self._ids(np.concatenate([np.asarray(s, dtype=np.int64) for s in sents]), kind)
        )
        starts = np.concatenate([[0], np.cumsum(lengths + 2)[:-1]])
        out = np.empty(int(lengths.sum() + 2 * len(sents)), dtype=np.int64)
        body = np.ones(out.size, dtype=bool)
        body[starts] = False
        body[starts + lengths + 1] = False
        out[starts] = self.bos_id
        out[starts + lengths + 1] = self.eos_id
        out[body] = flat
        return out



class KneserNeyLM(TokenModel):
    """Interpolated modified Kneser-Ney language model of any order (SRILM ``-kndiscount -interpolate -unk``).

    Args:
        order: n-gram order N >= 1.
        vocab: the id -> word list of the vocabulary the data's ids come from (e.g. the neural models'
            ``recurrentkit.data.Vocab``, or its ``tokens``), or an int vocabulary size for id-only data, or ``None``
            to take the vocabulary from the training data (sorted words, or ``max id + 1``). Every word of the
            vocabulary is predictable (gets probability mass).
        eos: sentence-end token in sentence mode (a word or an id of ``vocab``). ``None``: ``"</s>"``, appended to the
            vocabulary when absent (as an extra id ``len(vocab)`` for id data).
        unk: the unknown word: out-of-vocabulary strings are mapped to it (added to the vocabulary with count 0 when
            absent, like ``-unk``). ``None``: an out-of-vocabulary string raises ``KeyError``. Ids are never remapped.
        discounts: fixed ``(D1, D2, D3+)`` per order (index 0 = unigrams) instead of estimating them.
        min_counts: per-order count cut-offs (SRILM ``-gtNmin``); an n-gram whose (modified) count is below its
            order's cut-off gets no explicit probability, its mass goes to the back-off. Default: none (all 1).
        raw_count_of_counts: estimate the discounts of orders 2..N-1 from raw counts instead of continuation counts
            (a known mistake, kept to pin it in tests; unigrams keep theirs, since raw unigram count-of-counts of a
            closed-vocabulary corpus such as PTB give negative discounts).
        bos_raw_counts: keep raw counts for lower-order n-grams starting with ``<s>`` (SRILM). ``False`` gives them
            their continuation count, which is zero (a known mistake, kept to pin it in tests).

    After ``fit``: ``mode`` (``"sentence"`` or ``"stream"``), ``vocab_size`` (predictable words), ``bos_id``,
    ``eos_id``, ``unk_id``, ``words`` (id -> word, when known), ``discounts_`` (per order), ``counts_`` (number of
    n-gram types per order), ``fit_seconds``.
    """

    def __init__(
        self,
        order: int = 5,
        *,
        vocab: Sequence[str] | int | None = None,
        eos: str | int | None = None,
        unk: str | int | None = UNK,
        discounts: Sequence[Sequence[float]] | None = None,
        min_counts: Sequence[int] | None = None,
        raw_count_of_counts: bool = False,
        bos_raw_counts: bool = True,
    ) -> None:
        if not _is_int(order) or order < 1:
            raise ValueError(f"order must be an int >= 1, got {order!r}")
        self.order = int(order)
        super().__init__(vocab=vocab, eos=eos, unk=unk)
        if discounts is not None:
            discounts = [tuple(float(x) for x in d) for d in discounts]
            if len(discounts) != self.order or any(len(d) != 3 for d in discounts):
                raise ValueError(f"discounts must give (D1, D2, D3+) for each of the {self.order} orders")
        self._fixed_discounts = discounts
        if min_counts is None:
            min_counts = (1,) * self.order
        min_counts = tuple(int(m) for m in min_counts)
        if len(min_counts) != self.order or min(min_counts) < 1:
            raise ValueError(f"min_counts must give one cut-off >= 1 per order ({self.order}), got {min_counts}")
        if min_counts[0] != 1:
            raise ValueError("a unigram cut-off is not supported: min_counts[0] must be 1")
        self.min_counts = min_counts
        self.raw_count_of_counts = bool(raw_count_of_counts)
        self.bos_raw_counts = bool(bos_raw_counts)

    # ------------------------------------------------------------------ estimation
    def fit(self, data: object) -> KneserNeyLM:
        """Count n-grams of ``data`` (sentences or one stream; strings or ids) and build the model. Returns self."""
        t0 = time.perf_counter()
        seq = self._encode(data, fitting=True)
        N, B, bos = self.order, self.vocab_size + 1, self.bos_id
        self._B = B
        seg = np.cumsum(seq == bos)
        # ---- n-gram types per order (order 1: the word ids themselves)
        raw = [np.bincount(seq, minlength=B).astype(np.float64)]
        heads = [np.arange(B)]  # first word of each type
        lowers: list[np.ndarray | None] = [None]  # (k-1)-gram type of the suffix of each k-gram type
        keys: list[np.ndarray | None] = [None]
        prev = seq
        for k in range(2, N + 1):
            n = seq.size - k + 1
            idx = np.flatnonzero(seg[: max(n, 0)] == seg[k - 1 :]) if n > 0 else np.empty(0, np.int64)
            key = prev[idx] * B + seq[idx + k - 1]
            uniq, first, inv, cnt = _group(key)
            cur = np.full(max(n, 0), -1, dtype=np.int64)
            cur[idx] = inv.reshape(-1)
            pos = idx[first]
            lowers.append(prev[pos + 1])  # prev: types of order k-1 by start position
            heads.append(seq[pos])
            keys.append(uniq)
            raw.append(cnt.astype(np.float64))
            prev = cur
        # ---- modified counts: continuation counts below the top order, <s>-initial n-grams keep raw counts
        counts = []
        for k in range(1, N + 1):
            if k == N:
                c = raw[k - 1].copy()
            else:
                c = np.bincount(lowers[k], minlength=raw[k - 1].size).astype(np.float64)
                if self.bos_raw_counts:
                    c = np.where(heads[k - 1] == bos, raw[k - 1], c)
            if k == 1:
                c[bos] = 0.0  # <s> is never predicted
            counts.append(c)
        # ---- discounts
        self.discounts_ = []
        self.count_of_counts_ = []
        for k in range(1, N + 1):
            src = raw[k - 1] if (self.raw_count_of_counts and 1 < k < N) else counts[k - 1]
            coc = tuple(int(np.count_nonzero(src == r)) for r in (1, 2, 3, 4))
            self.count_of_counts_.append(coc)
            if self._fixed_discounts is not None:
                self.discounts_.append(self._fixed_discounts[k - 1])
            else:
                try:
                    self.discounts_.append(modified_kn_discounts(*coc))
                except ValueError as err:
                    raise ValueError(f"order {k}: {err}") from None
        # ---- probabilities, order by order, each interpolated with the order below
        V = self.vocab_size
        self._logp: list[np.ndarray] = []
        self._logbow: list[np.ndarray | None] = [None]
        self._keys = keys
        pfull_prev = None
        for k in range(1, N + 1):
            c = counts[k - 1]
            d = np.array((0.0, *self.discounts_[k - 1]))
            disc = d[np.minimum(c, 3).astype(np.int64)]
            seen = c > 0
            if k == 1:
                tot = c.sum()
                if tot <= 0:
                    raise ValueError("the training data has no predictable token")
                gamma = (d[1] * np.sum(c == 1) + d[2] * np.sum(c == 2) + d[3] * np.sum(c >= 3)) / tot
                p = np.where(seen, (c - disc) / tot, 0.0) + gamma / V
                p[bos] = 0.0
                pfull = p
            else:
                ctx = keys[k - 1] // B
                nctx = pfull_prev.size
                tot = np.bincount(ctx, weights=c, minlength=nctx)
                lw = (
                    d[1] * np.bincount(ctx, weights=(c == 1), minlength=nctx)
                    + d[2] * np.bincount(ctx, weights=(c == 2), minlength=nctx)
                    + d[3] * np.bincount(ctx, weights=(c >= 3), minlength=nctx)
                )
                safe = np.where(tot > 0, tot, 1.0)
                gamma = np.where(tot > 0, lw / safe, 1.0)
                plow = pfull_prev[lowers[k - 1]]
                p = np.where(seen, (c - disc) / safe[ctx], 0.0) + gamma[ctx] * plow
                explicit = c >= max(self.min_counts[k - 1], 1)
                bow = gamma
                cut = seen & ~explicit
                if cut.any():  # renormalise the back-off weight of contexts that lost n-grams to the cut-off
                    hit = np.bincount(ctx, weights=cut, minlength=nctx) > 0
                    num = 1.0 - np.bincount(ctx, weights=np.where(explicit, p, 0.0), minlength=nctx)
                    den = 1.0 - np.bincount(ctx, weights=np.where(explicit, plow, 0.0), minlength=nctx)
                    bow = np.where(hit, num / np.where(den > 0, den, 1.0), gamma)
                pfull = np.where(explicit, p, bow[ctx] * plow)
                with np.errstate(divide="ignore"):
                    self._logbow.append(np.log(bow))
            with np.errstate(divide="ignore"):
                self._logp.append(np.log(pfull))
            pfull_prev = pfull
        self.counts_ = [int(np.count_nonzero(raw[0][:V]))] + [int(r.size) for r in raw[1:]]
        self.fit_seconds = time.perf_counter() - t0
        return self

    # ------------------------------------------------------------------ scoring
    def _lookup(self, k: int, prefix: np.ndarray, word: np.ndarray) -> np.ndarray:
        """Type ids of the k-grams ``prefix_type + word`` (-1 where unseen or where ``prefix < 0``)."""
        keys = self._keys[k - 1]
        key = prefix * self._B + word
        pos = np.searchsorted(keys, key)
        pos_c = np.minimum(pos, max(keys.size - 1, 0))
        found = (prefix >= 0) & (pos < keys.size)
        if keys.size:
            found &= keys[pos_c] == key
        return np.where(found, pos_c, -1)

    def _score_encoded(self, seq: np.ndarray) -> np.ndarray:
        """Natural-log probabilities of every non-``<s>`` position of an encoded sequence (back-off form)."""
        bos, N = self.bos_id, self.order
        seg = np.cumsum(seq == bos)
        targets = np.flatnonzero(seq != bos)
        lp = self._logp[0][seq[targets]]
        prev = seq
        for k in range(2, N + 1):
            n = seq.size - k + 1
            if n <= 0:
                break
            same = seg[:n] == seg[k - 1 :]
            cur = self._lookup(k, np.where(same, prev[:n], -1), seq[k - 1 :])
            s = targets - (k - 1)
            ok = s >= 0
            sv = np.where(ok, s, 0)
            t = np.where(ok, cur[sv], -1)
            c = np.where(ok & same[sv], prev[sv], -1)
            lp = np.where(
                t >= 0,
                self._logp[k - 1][np.maximum(t, 0)],
                np.where(c >= 0, lp + self._logbow[k - 1][np.maximum(c, 0)], lp),
            )
            prev = cur
        return lp

    def score(self, data: object) -> np.ndarray:
        """Vectorised scorer: natural-log probability of every predicted token of ``data`` (same mode as ``fit``).

        Sentence mode predicts every word and each ``</s>``; stream mode predicts every token.
        """
        self._check_fitted()
        return self._score_encoded(self._encode(data))

    def perplexity(self, data: object) -> float:
        """``exp(-mean log P)`` over the predicted tokens of ``data`` (SRILM's ``ppl``, counting ``</s>``)."""
        lp = self.score(data)
        return float(math.exp(-lp.mean()))

    def _context_ids(self, context: Sequence) -> np.ndarray:
        toks = list(context)
        ids = []
        for t in toks:
            if (isinstance(t, str) and t == BOS) or (_is_int(t) and int(t) == self.bos_id):
                ids = [self.bos_id]
            else:
                ids.append(int(self._ids([t], "str" if isinstance(t, str) else "int")[0]))
        return np.asarray(ids[-(self.order - 1) :] if self.order > 1 else [], dtype=np.int64)

    def distribution(self, context: Sequence = ()) -> np.ndarray:
        """``P(w | context)`` for every internal id w (index ``bos_id`` holds 0); sums to 1.

        ``context`` is a list of words or ids; ``"<s>"`` (or ``bos_id``) marks a sentence start and hides what is
        before it. Only the last ``order - 1`` tokens matter.
        """
        self._check_fitted()
        ctx = self._context_ids(context)
        p = np.exp(self._logp[0])
        words = np.arange(self._B)
        for k in range(2, self.order + 1):
            m = k - 1
            if m > ctx.size:
                break
            sub = ctx[-m:]
            c = sub[:1]
            for j in range(2, m + 1):
                c = self._lookup(j, c, sub[j - 1 : j])
            if c[0] < 0:
                break
            t = self._lookup(k, np.full(self._B, c[0]), words)
            p = np.where(t >= 0, np.exp(self._logp[k - 1][np.maximum(t, 0)]), p * math.exp(self._logbow[k - 1][c[0]]))
        return p

    def log_prob(self, context: Sequence, word: str | int) -> float:
        """Natural-log ``P(word | context)``."""
        self._check_fitted()
        if word == BOS:
            raise ValueError(f"{BOS!r} is context only and is never predicted")
        w = int(self._ids([word], "str" if isinstance(word, str) else "int")[0])
        with np.errstate(divide="ignore"):
            return float(np.log(self.distribution(context)[w]))


# ---------------------------------------------------------------------- command line
def read_corpus(path: str | Path, mode: str, eos: str = "<eos>") -> list:
    """Whitespace-tokenised lines of ``path``: a list of sentences (``mode="sentence"``, empty lines skipped) or
    one token stream with ``eos`` after every line (``mode="stream"``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    with path.open(encoding="utf-8") as f:
        lines = [line.split() for line in f]
    if mode == "sentence":
        return [s for s in lines if s]
    if mode == "stream":
        out: list[str] = []
        for s in lines:
            out.extend(s)
            out.append(eos)
        return out
    raise ValueError(f"mode must be 'sentence' or 'stream', got {mode!r}")


def find_split(data_dir: Path, split: str) -> Path:
    """The ``split`` file of a corpus folder: ``ptb.<split>.txt``, ``<split>.txt`` or ``wiki.<split>.tokens``."""
    for name in (f"ptb.{split}.txt", f"{split}.txt", f"wiki.{split}.tokens"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(f"no {split} file (ptb.{split}.txt, {split}.txt or wiki.{split}.tokens) in {data_dir}")
