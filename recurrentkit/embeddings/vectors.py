"""Word vectors: nearest neighbours, analogies, the word2vec text format, and initialising an ``nn.Embedding``.

Similarity is cosine similarity, ``cos(u, v) = u·v / (|u| |v|)``. An analogy ``a : b :: c : ?`` is solved with
3CosAdd (Mikolov et al., 2013; gensim's ``most_similar(positive=[b, c], negative=[a])``):
``argmax_w cos(w, (û_b - û_a + û_c) / 3)`` over the unit vectors ``û``, excluding ``a``, ``b`` and ``c``.

The word2vec text format (word2vec.c ``-binary 0``, gensim ``save_word2vec_format(binary=False)``) is a header line
``"<count> <dim>"`` followed by one line per word: ``"<word> <v_1> ... <v_dim>"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["WordVectors", "save_word2vec_format", "load_word2vec_format", "vocab_tokens", "init_embedding",
           "embedding_from_vectors"]


def vocab_tokens(vocab: Any) -> list[str]:
    """The tokens of a :class:`~recurrentkit.data.vocab.Vocab` (or any object with ``tokens``), or of a list."""
    if isinstance(vocab, (list, tuple)):
        return [str(t) for t in vocab]
    if hasattr(vocab, "tokens"):
        return list(vocab.tokens)
    if hasattr(vocab, "decode") and hasattr(vocab, "__len__"):
        return list(vocab.decode(list(range(len(vocab)))))
    raise TypeError(f"expected a Vocab or a list of tokens, got {type(vocab).__name__}")


class WordVectors:
    """A table of word vectors in a fixed order (id order, normally by descending frequency).

    Args:
        words: the words, one per row; the first occurrence of a repeated word wins on lookup.
        vectors: ``[len(words), dim]`` array or tensor (stored as float32 CPU tensor).
        counts: optional frequencies aligned with ``words``.
    """

    def __init__(self, words: Sequence[str], vectors: Tensor | np.ndarray, counts: Sequence[int] | None = None):
        vectors = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, Tensor) else vectors)
        vectors = vectors.detach().to("cpu", torch.float32)
        if vectors.dim() != 2:
            raise ValueError(f"vectors must be 2-D [num_words, dim], got shape {tuple(vectors.shape)}")
        words = [str(w) for w in words]
        if len(words) != vectors.shape[0]:
            raise ValueError(f"{len(words)} words but {vectors.shape[0]} vectors")
        if counts is not None and len(counts) != len(words):
            raise ValueError(f"{len(counts)} counts but {len(words)} words")
        self.words = words
        self.vectors = vectors.contiguous()
        self.counts = None if counts is None else [int(c) for c in counts]
        self.key_to_index: dict[str, int] = {}
        for i, w in enumerate(words):
            self.key_to_index.setdefault(w, i)
        self._unit: Tensor | None = None

    # -- lookup ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> Tensor:
        return self.vectors[self.index(word)]

    def __repr__(self) -> str:
        return f"WordVectors(num_words={len(self)}, vector_size={self.vector_size})"

    @property
    def vector_size(self) -> int:
        return int(self.vectors.shape[1])

    def index(self, word: str) -> int:
        """Row of ``word`` (KeyError naming the word when it is absent)."""
        try:
            return self.key_to_index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self)} words)") from None

    @property
    def unit_vectors(self) -> Tensor:
        """Rows scaled to unit L2 norm (zero rows stay zero); cached."""
        if self._unit is None:
            norms = self.vectors.norm(dim=1, keepdim=True)
            self._unit = self.vectors / norms.clamp_min(1e-12)
        return self._unit

    # -- similarity -----------------------------------------------------------------------------------------
    def _query(self, positive: Iterable[str | int], negative: Iterable[str | int]) -> tuple[Tensor, list[int]]:
        idx_pos = [w if isinstance(w, int) else self.index(w) for w in positive]
        idx_neg = [w if isinstance(w, int) else self.index(w) for w in negative]
        if not idx_pos and not idx_neg:
            raise ValueError("most_similar needs at least one positive or negative word")
        unit = self.unit_vectors
        mean = unit[idx_pos].sum(0) - unit[idx_neg].sum(0) if idx_neg else unit[idx_pos].sum(0)
        mean = mean / (len(idx_pos) + len(idx_neg))
        return mean / mean.norm().clamp_min(1e-12), idx_pos + idx_neg

    def most_similar(self, positive: str | Sequence[str] = (), negative: str | Sequence[str] = (), topn: int = 10,
                     restrict_vocab: int | None = None) -> list[tuple[str, float]]:
        """The ``topn`` words closest (cosine) to the mean of the unit vectors of ``positive`` minus ``negative``.

        The query words themselves are excluded; ``restrict_vocab`` searches only the first N rows.
        """
        positive = [positive] if isinstance(positive, str) else list(positive)
        negative = [negative] if isinstance(negative, str) else list(negative)
        if topn < 1:
            raise ValueError(f"topn must be >= 1, got {topn}")
        query, exclude = self._query(positive, negative)
        limit = len(self) if restrict_vocab is None else min(int(restrict_vocab), len(self))
        sims = self.unit_vectors[:limit] @ query
        sims[[i for i in exclude if i < limit]] = -float("inf")
        k = min(topn, limit - len({i for i in exclude if i < limit}))
        values, indices = sims.topk(max(k, 0))
        return [(self.words[i], float(v)) for i, v in zip(indices.tolist(), values.tolist())]

    def analogy(self, a: str, b: str, c: str, topn: int = 1,
                restrict_vocab: int | None = None) -> str | list[tuple[str, float]]:
        """Solve ``a : b :: c : ?`` by 3CosAdd (``b - a + c``, the three excluded).

        Returns the best word when ``topn == 1``, else a list of ``(word, similarity)``.
        """
        result = self.most_similar(positive=[b, c], negative=[a], topn=topn, restrict_vocab=restrict_vocab)
        return result[0][0] if topn == 1 else result

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        u = self.unit_vectors
        return float(u[self.index(w1)] @ u[self.index(w2)])

    def evaluate_analogies(self, path: str | os.PathLike, restrict_vocab: int = 30000, case_insensitive: bool = True,
                           dummy4unknown: bool = False):
        """Accuracy on a ``questions-words.txt`` style file (see :func:`.analogy.evaluate_analogies`)."""
        from .analogy import evaluate_analogies

        return evaluate_analogies(self, path, restrict_vocab=restrict_vocab, case_insensitive=case_insensitive,
                                  dummy4unknown=dummy4unknown)

    # -- persistence ----------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the word2vec text format (see :func:`save_word2vec_format`)."""
        save_word2vec_format(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike, limit: int | None = None) -> WordVectors:
        """Read the word2vec text format (see :func:`load_word2vec_format`)."""
        return load_word2vec_format(path, limit=limit)


def save_word2vec_format(vectors: WordVectors, path: str | os.PathLike, precision: int = 9) -> None:
    """Write ``vectors`` as word2vec text: header ``"N D"``, then ``word v_1 ... v_D`` per line (UTF-8).

    ``precision=9`` significant digits makes float32 values round-trip exactly.
    """
    if not isinstance(vectors, WordVectors):
        raise TypeError(f"expected WordVectors, got {type(vectors).__name__}")
    for w in vectors.words:
        if not w or any(ch.isspace() for ch in w):
            raise ValueError(f"word {w!r} is empty or contains whitespace; the word2vec text format cannot hold it")
    fmt = f"%.{int(precision)}g"
    arr = vectors.vectors.numpy()
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{arr.shape[0]} {arr.shape[1]}\n")
        for w, row in zip(vectors.words, arr):
            f.write(w + " " + " ".join(fmt % x for x in row.tolist()) + "\n")


def load_word2vec_format(path: str | os.PathLike, limit: int | None = None) -> WordVectors:
    """Read a word2vec text file (header ``"N D"``); ``limit`` keeps only the first rows.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a malformed header or a row whose length is not ``D + 1`` (the line number is named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"word-vector file not found: {path}")
    with open(path, encoding="utf-8", errors="strict") as f:
        header = f.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise ValueError(f"{path}: first line must be '<count> <dim>', got {' '.join(header)!r}")
        n, dim = int(header[0]), int(header[1])
        if limit is not None:
            n = min(n, int(limit))
        words: list[str] = []
        data = np.empty((n, dim), dtype=np.float32)
        for i in range(n):
            line = f.readline()
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if len(parts) != dim + 1:
                raise ValueError(f"{path}: line {i + 2} has {len(parts) - 1} values, expected {dim}")
            words.append(parts[0])
            data[i] = np.asarray(parts[1:], dtype=np.float32)
    return WordVectors(words, data)


def init_embedding(embedding: nn.Embedding, vocab: Any, vectors: WordVectors | str | os.PathLike,
                   lowercase_fallback: bool = True) -> list[str]:
    """Copy pretrained vectors into ``embedding`` rows in place, for every token of ``vocab`` found in ``vectors``.

    A token is looked up as is, then (``lowercase_fallback``) lowercased. Rows of tokens not found keep their
    current values. Returns the tokens not found (the OOV words), in id order.

    Raises:
        ValueError: the embedding has fewer rows than the vocab or a different width than the vectors.
    """
    if isinstance(vectors, (str, os.PathLike)):
        vectors = load_word2vec_format(vectors)
    tokens = vocab_tokens(vocab)
    if embedding.num_embeddings < len(tokens):
        raise ValueError(f"embedding has {embedding.num_embeddings} rows but the vocab has {len(tokens)} tokens")
    if embedding.embedding_dim != vectors.vector_size:
        raise ValueError(f"embedding_dim {embedding.embedding_dim} != vector size {vectors.vector_size}")
    rows, src, oov = [], [], []
    for i, tok in enumerate(tokens):
        j = vectors.key_to_index.get(tok)
        if j is None and lowercase_fallback:
            j = vectors.key_to_index.get(tok.lower())
        if j is None:
            oov.append(tok)
        else:
            rows.append(i)
            src.append(j)
    if rows:
        with torch.no_grad():
            w = embedding.weight
            w[torch.tensor(rows)] = vectors.vectors[torch.tensor(src)].to(w.device, w.dtype)
    return oov


def embedding_from_vectors(vocab: Any, vectors: WordVectors | str | os.PathLike, freeze: bool = False,
                           padding_idx: int | None = None, lowercase_fallback: bool = True,
                           seed: int = 0) -> tuple[nn.Embedding, list[str]]:
    """A new ``nn.Embedding(len(vocab), dim)`` initialised from ``vectors``; returns ``(embedding, oov_tokens)``.

    OOV rows are drawn from ``N(0, s^2)`` with ``s`` the standard deviation of the pretrained vectors (seeded);
    the ``padding_idx`` row is zero.
    """
    if isinstance(vectors, (str, os.PathLike)):
        vectors = load_word2vec_format(vectors)
    tokens = vocab_tokens(vocab)
    emb = nn.Embedding(len(tokens), vectors.vector_size, padding_idx=padding_idx)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        emb.weight.normal_(0.0, float(vectors.vectors.std()), generator=gen)
    oov = init_embedding(emb, tokens, vectors, lowercase_fallback=lowercase_fallback)
    if padding_idx is not None:
        with torch.no_grad():
            emb.weight[padding_idx].zero_()
    emb.weight.requires_grad_(not freeze)
    return emb, oov
