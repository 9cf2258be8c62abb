"""word2vec training data: subsampling, dynamic windows, (centre, context) pairs and negative samples, vectorised.

Per epoch, as word2vec.c and gensim do:

1. **Subsampling** of frequent words. With ``f(w)`` the count of ``w``, ``T`` the number of training tokens and
   ``s = sample``, a token is kept with probability ``p_keep(w) = min(1, (sqrt(f/(sT)) + 1) * sT/f)``
   (word2vec.c's formula, gensim's ``sample_int``). Dropped tokens are removed before windows are formed.
2. **Dynamic window**: each centre word draws its own window ``b ~ U{1, ..., window}`` (word2vec.c's
   ``window - rand() % window``); contexts are the tokens at distance ``<= b`` in the same sentence (line).
3. **Negatives** are drawn from the unigram distribution raised to ``ns_exponent`` (0.75):
   ``P_n(w) = f(w)^0.75 / sum_v f(v)^0.75``.

Pairs are generated with numpy for a chunk of tokens at a time (one vectorised step per offset, no Python loop over
tokens), shuffled within the chunk, and yielded as ready-made batches, so the ``DataLoader`` uses ``batch_size=None``.
Each batch carries ``progress``, the fraction of all epochs' raw tokens consumed, for word2vec's linear LR decay.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..embeddings import sgns_kernel

__all__ = ["keep_probabilities", "subsample_mask", "read_sentences", "noise_distribution", "NoiseSampler",
           "skipgram_pairs", "cbow_windows", "Word2VecCorpus", "Word2VecDataset", "Word2VecDataModule"]


def keep_probabilities(counts: Sequence[int] | np.ndarray, sample: float = 1e-3) -> np.ndarray:
    """word2vec.c's probability of keeping each word: ``min(1, (sqrt(f/(sT)) + 1) * sT/f)``; ``sample=0`` keeps all."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample < 0:
        raise ValueError(f"sample must be >= 0, got {sample}")
    if sample == 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    p[counts <= 0] = 1.0
    return np.minimum(p, 1.0)


def subsample_mask(ids: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask: token ``t`` survives with probability ``keep[ids[t]]`` (independent draws)."""
    return rng.random(len(ids)) < keep[ids]


def noise_distribution(counts: Sequence[int] | np.ndarray, power: float = 0.75) -> np.ndarray:
    """Negative-sampling distribution ``f(w)^power / sum_v f(v)^power`` (float64, sums to 1)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any():
        raise ValueError("counts must be a non-empty 1-D array of non-negative numbers")
    weights = counts ** power
    total = weights.sum()
    if total <= 0:
        raise ValueError("noise distribution is empty: all counts are zero")
    return weights / total


class NoiseSampler:
    """Draws word ids from :func:`noise_distribution` by inverse-CDF search (exact, like gensim's ``cum_table``)."""

    def __init__(self, counts: Sequence[int] | np.ndarray, power: float = 0.75) -> None:
        self.probs = noise_distribution(counts, power)
        self.cdf = np.cumsum(self.probs)
        self.cdf[-1] = 1.0

    def sample(self, shape: int | tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Ids of shape ``shape`` (int64)."""
        u = rng.random(shape)
        return np.minimum(np.searchsorted(self.cdf, u, side="right"), len(self.cdf) - 1).astype(np.int64)


def _window_sizes(n: int, window: int, rng: np.random.Generator, shrink: bool) -> np.ndarray:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if shrink:
        return rng.integers(1, window + 1, size=n)
    return np.full(n, window)


def skipgram_pairs(ids: np.ndarray, sentence_ids: np.ndarray, window: int, rng: np.random.Generator,
                   shrink: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All (centre, context) pairs of a token array: context within the centre's (shrunk) window, same sentence.

    Returns two int64 arrays of equal length (centre ids, context ids), grouped by offset.
    """
    ids = np.asarray(ids)
    sentence_ids = np.asarray(sentence_ids)
    n = len(ids)
    b = _window_sizes(n, window, rng, shrink)
    centres, contexts = [], []
    for d in range(1, min(window, n - 1) + 1):
        same = sentence_ids[:-d] == sentence_ids[d:]
        right = np.flatnonzero(same & (b[:-d] >= d))  # centre i, context i + d
        left = np.flatnonzero(same & (b[d:] >= d))  # centre i + d, context i
        centres += [ids[right], ids[left + d]]
        contexts += [ids[right + d], ids[left]]
    if not centres:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(centres).astype(np.int64), np.concatenate(contexts).astype(np.int64)


def cbow_windows(ids: np.ndarray, sentence_ids: np.ndarray, window: int, rng: np.random.Generator,
                 shrink: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Centres and their context rows ``[N, 2 * window]`` (padded with -1); centres without context are dropped."""
    ids = np.asarray(ids)
    sentence_ids = np.asarray(sentence_ids)
    n = len(ids)
    b = _window_sizes(n, window, rng, shrink)
    ctx = np.full((n, 2 * window), -1, dtype=np.int64)
    for d in range(1, min(window, n - 1) + 1):
        ok = (sentence_ids[:-d] == sentence_ids[d:]) & (b[:-d] >= d)
        ctx[:-d, window + d - 1] = np.where(ok, ids[d:], -1)  # right neighbour of centre i
        ok = (sentence_ids[d:] == sentence_ids[:-d]) & (b[d:] >= d)
        ctx[d:, window - d] = np.where(ok, ids[:-d], -1)  # left neighbour of centre i + d
    has = (ctx >= 0).any(1)
    return ids[has].astype(np.int64), ctx[has]


class Word2VecCorpus:
    """Encoded training tokens: ids (in-vocabulary tokens only), sentence index per token, and the vocab.

    Words below ``min_count`` are dropped from the text (word2vec.c and gensim do the same), not mapped to ``<unk>``.
    The vocab has no specials, so id order is frequency order (ties alphabetical).
    """

    def __init__(self, sentences: Sequence[Sequence[str]], min_count: int = 5, max_vocab_size: int | None = None):
        from .vocab import Vocab

        self.vocab = Vocab.build(sentences, min_freq=min_count, max_size=max_vocab_size, specials=())
        if len(self.vocab) == 0:
            raise ValueError(f"no word occurs at least min_count={min_count} times")
        index = {t: i for i, t in enumerate(self.vocab.tokens)}
        ids, sent = [], []
        for s, toks in enumerate(sentences):
            enc = [index[t] for t in toks if t in index]
            ids.extend(enc)
            sent.extend([s] * len(enc))
        self.ids = np.asarray(ids, dtype=np.int32)
        self.sentence_ids = np.asarray(sent, dtype=np.int32)
        self.counts = np.asarray(self.vocab.counts, dtype=np.int64)
        self.raw_token_count = int(sum(len(t) for t in sentences))

    @property
    def words(self) -> list[str]:
        return self.vocab.tokens

    def __len__(self) -> int:
        return len(self.ids)


class Word2VecDataset(IterableDataset):
    """One epoch per ``iter()``: subsample, cut into chunks at sentence ends, make pairs, shuffle, batch.

    Skip-gram batches: ``{"centre": [B], "context": [B], "negatives": [B, K], "progress": float}``.
    CBOW batches: ``{"centre": [B], "context": [B, 2W] (-1 padded), "negatives": [B, K], "progress": float}``.
    ``B`` counts pairs (skip-gram) or centre words (CBOW). With ``negative_sharing = G > 1`` each group of ``G``
    consecutive (shuffled) pairs shares one row of ``K`` noise words: ``negatives`` is ``[ceil(B / G), K]``.

    With ``compiled=True`` the dataset yields the chunks themselves, for the compiled trainer
    (:func:`recurrentkit.embeddings.sgns_kernel.train_chunk`), which subsamples, draws windows and negatives and
    trains in text order as word2vec.c does: ``{"tokens": [N], "sentences": [N], "keep": [V], "noise_cdf": [V],
    "seed": int, "progress": float, "progress_end": float, "words": float}`` plus the settings (``mode``, ``window``,
    ``negative``, ``shrink_windows``).
    """

    def __init__(self, corpus: Word2VecCorpus, mode: str = "sg", window: int = 5, sample: float = 1e-3,
                 negative: int = 5, ns_exponent: float = 0.75, batch_size: int = 4096, chunk_size: int = 100_000,
                 shrink_windows: bool = True, epochs: int = 5, seed: int = 1, negative_sharing: int = 1,
                 compiled: bool = False) -> None:
        if mode not in ("sg", "cbow"):
            raise ValueError(f"mode must be 'sg' or 'cbow', got {mode!r}")
        if negative < 1:
            raise ValueError(f"negative must be >= 1, got {negative}")
        if batch_size < 1 or chunk_size < 1:
            raise ValueError(f"batch_size and chunk_size must be >= 1, got {batch_size}, {chunk_size}")
        self.corpus, self.mode, self.window, self.negative = corpus, mode, int(window), int(negative)
        self.batch_size, self.chunk_size, self.shrink_windows = int(batch_size), int(chunk_size), shrink_windows
        self.keep = keep_probabilities(corpus.counts, sample)
        self.noise = NoiseSampler(corpus.counts, ns_exponent)
        if negative_sharing < 1 or batch_size % negative_sharing:
            raise ValueError(f"negative_sharing must be >= 1 and divide batch_size={batch_size}, "
                             f"got {negative_sharing}")
        self.negative_sharing = int(negative_sharing)
        self.epochs, self.seed, self.epoch = int(epochs), int(seed), 0
        self.compiled = bool(compiled)
        self._explicit_epoch = False

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch of the next ``iter()`` (needed with DataLoader workers, which iterate a copy)."""
        self.epoch = int(epoch)
        self._explicit_epoch = True

    def _chunks(self, n: int) -> list[tuple[int, int]]:
        """Cut ``[0, n)`` into spans of about ``chunk_size`` tokens ending at sentence boundaries."""
        sent = self.corpus.sentence_ids
        bounds, start = [], 0
        while start < n:
            stop = min(start + self.chunk_size, n)
            if stop < n:  # extend to the end of the current sentence
                stop = int(np.searchsorted(sent, sent[stop - 1], side="right"))
            bounds.append((start, stop))
            start = stop
        return bounds

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch
        if not self._explicit_epoch:  # single process: count epochs ourselves
            self.epoch += 1
        rng = np.random.default_rng([self.seed, epoch])
        corpus = self.corpus
        n = len(corpus)
        total = max(self.epochs, epoch + 1) * n
        if self.compiled:
            yield from self._raw_chunks(epoch, rng, total)
            return
        for start, stop in self._chunks(n):
            ids = corpus.ids[start:stop]
            keep = subsample_mask(ids, self.keep, rng)
            ids, sent = ids[keep], corpus.sentence_ids[start:stop][keep]
            if self.mode == "sg":
                centre, context = skipgram_pairs(ids, sent, self.window, rng, self.shrink_windows)
            else:
                centre, context = cbow_windows(ids, sent, self.window, rng, self.shrink_windows)
            m = len(centre)
            if m == 0:
                continue
            perm = rng.permutation(m)
            centre, context = centre[perm], context[perm]
            share = self.negative_sharing
            negatives = self.noise.sample((-(-m // share), self.negative), rng)  # one row per group of pairs
            p0, p1 = (epoch * n + start) / total, (epoch * n + stop) / total
            for b in range(0, m, self.batch_size):
                e = min(b + self.batch_size, m)
                yield {"centre": torch.from_numpy(centre[b:e]), "context": torch.from_numpy(context[b:e]),
                       "negatives": torch.from_numpy(negatives[b // share:-(-e // share)]),
                       "progress": p0 + (p1 - p0) * b / m,
                       "words": (stop - start) * (e - b) / m}

    def _raw_chunks(self, epoch: int, rng: np.random.Generator, total: int) -> Iterator[dict]:
        corpus, n = self.corpus, len(self.corpus)
        keep, cdf = torch.from_numpy(self.keep), torch.from_numpy(self.noise.cdf)
        settings = {"mode": self.mode, "window": self.window, "negative": self.negative,
                    "shrink_windows": self.shrink_windows}
        for start, stop in self._chunks(n):
            yield {"tokens": torch.from_numpy(corpus.ids[start:stop]),
                   "sentences": torch.from_numpy(corpus.sentence_ids[start:stop]), "keep": keep, "noise_cdf": cdf,
                   "seed": int(rng.integers(2**62)), "progress": (epoch * n + start) / total,
                   "progress_end": (epoch * n + stop) / total, "words": float(stop - start), **settings}


def read_sentences(path: str | os.PathLike, lower: bool = False, max_lines: int | None = None) -> list[list[str]]:
    """Lines of a text file as token lists via HF ``datasets`` (``load_dataset("text")``) and ``WordTokenizer``.

    Empty lines are dropped; no end-of-line token is added (word2vec's windows stop at line ends).
    """
    from datasets import load_dataset

    from .tokenizers import WordTokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training text not found: {path}")
    ds = load_dataset("text", data_files={"train": str(path)}, split="train")
    if max_lines is not None:
        ds = ds.select(range(min(int(max_lines), len(ds))))
    tok = WordTokenizer(eos=None, lower=lower)
    out = []
    for line in ds["text"]:
        toks = tok.tokenize(line)
        if toks:
            out.append(toks)
    return out


class Word2VecDataModule(L.LightningDataModule):
    """word2vec data from a text file (one sentence or paragraph per line, whitespace-tokenised).

    Args:
        train_file: path to the text; or pass ``sentences`` (token lists) instead (programmatic use, tests).
        min_count: drop words seen fewer times. max_vocab_size: keep the most frequent words only.
        lower: lowercase the text. max_lines: read only the first lines (tiny runs).
        mode: ``"sg"`` (skip-gram) or ``"cbow"``. window: maximal window. sample: subsampling threshold.
        negative: negatives per positive. ns_exponent: noise exponent. shrink_windows: dynamic window.
        batch_size: pairs (skip-gram) or centres (CBOW) per step. chunk_size: tokens per pair-generation chunk.
        epochs: epochs used for the LR schedule when no Trainer is attached (else ``trainer.max_epochs``).
        seed: base seed of subsampling, windows, shuffling and negatives.
        num_workers: DataLoader worker processes (1 overlaps pair generation with training).
        negative_sharing: pairs (of a shuffled batch) that share one draw of ``negative`` noise words; 1 is
            word2vec's own scheme, larger values trade independence between pairs for speed (docs/word2vec.md).
        compiled: yield raw chunks for the compiled trainer (``Word2VecTask(backend="numba")``), which makes the
            pairs itself in text order, word2vec.c's way; ``None`` (default): when Numba is installed and
            ``negative_sharing == 1``. ``False``: NumPy pairs in shuffled batches for the torch backend.
    """

    def __init__(self, train_file: str | None = None, min_count: int = 5, max_vocab_size: int | None = None,
                 lower: bool = False, max_lines: int | None = None, mode: str = "sg", window: int = 5,
                 sample: float = 1e-3, negative: int = 5, ns_exponent: float = 0.75, shrink_windows: bool = True,
                 batch_size: int = 4096, chunk_size: int = 100_000, epochs: int = 5, seed: int = 1,
                 num_workers: int = 0, sentences: list[list[str]] | None = None, negative_sharing: int = 1,
                 compiled: bool | None = None) -> None:
        super().__init__()
        if train_file is None and sentences is None:
            raise ValueError("give train_file or sentences")
        if mode not in ("sg", "cbow"):
            raise ValueError(f"mode must be 'sg' or 'cbow', got {mode!r}")
        self.train_file, self.sentences = train_file, sentences
        self.min_count, self.max_vocab_size, self.lower, self.max_lines = min_count, max_vocab_size, lower, max_lines
        if compiled and negative_sharing != 1:
            raise ValueError("compiled=True trains word2vec's own negatives (one draw per pair): negative_sharing "
                             f"must be 1, got {negative_sharing}")
        if compiled and not sgns_kernel.available():
            raise ImportError('compiled=True needs Numba: pip install "recurrentkit[fast]" (or compiled=False)')
        if compiled is None:
            compiled = negative_sharing == 1 and sgns_kernel.available()
        self.dataset_kwargs = dict(mode=mode, window=window, sample=sample, negative=negative,
                                   ns_exponent=ns_exponent, batch_size=batch_size, chunk_size=chunk_size,
                                   shrink_windows=shrink_windows, seed=seed, negative_sharing=negative_sharing,
                                   compiled=bool(compiled))
        self.epochs, self.num_workers = epochs, int(num_workers)
        self._corpus: Word2VecCorpus | None = None
        self.train_dataset: Word2VecDataset | None = None

    @property
    def corpus(self) -> Word2VecCorpus:
        """The encoded corpus (built on first use)."""
        if self._corpus is None:
            sentences = self.sentences
            if sentences is None:
                sentences = read_sentences(self.train_file, lower=self.lower, max_lines=self.max_lines)
            self._corpus = Word2VecCorpus(sentences, self.min_count, self.max_vocab_size)
        return self._corpus

    @property
    def vocab(self):
        return self.corpus.vocab

    @property
    def vocab_size(self) -> int:
        return len(self.corpus.vocab)

    @property
    def words(self) -> list[str]:
        return self.corpus.words

    def setup(self, stage: str | None = None) -> None:
        if self.train_dataset is None:
            epochs = self.epochs
            trainer = getattr(self, "trainer", None)
            if trainer is not None and trainer.max_epochs is not None and trainer.max_epochs > 0:
                epochs = trainer.max_epochs
            self.train_dataset = Word2VecDataset(self.corpus, epochs=epochs, **self.dataset_kwargs)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return DataLoader(self.train_dataset, batch_size=None, num_workers=self.num_workers,
                          persistent_workers=False)

    def set_epoch(self, epoch: int) -> None:
        """Tell the dataset which epoch starts (called by :class:`Word2VecTask` at each epoch start)."""
        self.setup("fit")
        self.train_dataset.set_epoch(epoch)
