"""Initialise an embedding from a word-vector text file (word2vec text format or GloVe), reporting the OOV words.

Both formats hold one ``word v_1 ... v_d`` line per word; word2vec's text format adds a ``count dim`` header line,
which is detected and skipped. Only the rows of words in the vocabulary are kept, so a large file costs one pass.
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


@dataclass
class PretrainedReport:
    """What :func:`load_word_vectors` found: counts and the vocabulary words that had no vector."""

    path: str
    dim: int
    found: int
    total: int
    oov: list[str] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        """Fraction of the (non-special) vocabulary that got a pretrained vector."""
        return self.found / max(self.total, 1)

    def __str__(self) -> str:
        sample = ", ".join(self.oov[:10]) + (" ..." if len(self.oov) > 10 else "")
        return (f"{self.path}: {self.found}/{self.total} words found ({100 * self.coverage:.1f}%), "
                f"{len(self.oov)} OOV [{sample}]")


def _open(path: str):
    return gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")


def load_word_vectors(path: str | os.PathLike, words: Sequence[str], lower: bool = False,
                      skip: Sequence[str] = ()) -> tuple[Tensor, Tensor, PretrainedReport]:
    """Read the vectors of ``words`` from a word2vec-text or GloVe file.

    Args:
        path: the text file (``.gz`` allowed).
        words: the vocabulary, index -> word.
        lower: also match a word by its lowercase form when the exact form is absent.
        skip: words not to look up nor report (e.g. ``<pad>``, ``<unk>``).

    Returns:
        ``(vectors [len(words), d], found [len(words)] bool, report)``; rows of words not found are zeros.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"word-vector file not found: {path}")
    skip_set = set(skip)
    vocab = {w for w in words if w not in skip_set}
    lowered = {w.lower() for w in vocab} if lower else set()
    exact: dict[str, Tensor] = {}
    by_lower: dict[str, Tensor] = {}
    dim = None
    with _open(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "count dim"
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            elif len(parts) - 1 != dim:
                raise ValueError(f"{path}, line {line_no}: expected {dim} values after the word, got {len(parts) - 1}")
            word = parts[0]
            if word not in vocab and word not in lowered:
                continue
            try:
                values = torch.tensor([float(v) for v in parts[1:]])
            except ValueError as err:
                raise ValueError(f"{path}, line {line_no}: non-numeric vector for {word!r}") from err
            if word in vocab:
                exact.setdefault(word, values)
            if lower and word in lowered:
                by_lower.setdefault(word, values)
    if dim is None:
        raise ValueError(f"{path} holds no word vectors")
    vectors = torch.zeros(len(words), dim)
    found = torch.zeros(len(words), dtype=torch.bool)
    oov = []
    for index, word in enumerate(words):
        if word in skip_set:
            continue
        values = exact.get(word)
        if values is None and lower:
            values = by_lower.get(word.lower())
        if values is None:
            oov.append(word)
        else:
            vectors[index] = values
            found[index] = True
    considered = sum(1 for w in words if w not in skip_set)
    report = PretrainedReport(path=path, dim=dim, found=considered - len(oov), total=considered, oov=oov)
    return vectors, found, report


def init_embedding_(embedding: nn.Embedding, path: str | os.PathLike, words: Sequence[str], lower: bool = False,
                    skip: Sequence[str] = (), freeze: bool = False) -> PretrainedReport:
    """Copy pretrained vectors into ``embedding`` (rows of OOV words keep their initial values) and log the OOV.

    The file's dimension must equal ``embedding.embedding_dim``. ``freeze`` turns off the embedding's gradient.
    """
    if len(words) != embedding.num_embeddings:
        raise ValueError(f"the vocabulary has {len(words)} words but the embedding {embedding.num_embeddings} rows")
    vectors, found, report = load_word_vectors(path, words, lower=lower, skip=skip)
    if report.dim != embedding.embedding_dim:
        raise ValueError(f"{report.path} holds {report.dim}-d vectors but embedding_size is "
                         f"{embedding.embedding_dim}")
    with torch.no_grad():
        weight = embedding.weight
        weight[found] = vectors[found].to(weight.dtype)
    if freeze:
        embedding.weight.requires_grad_(False)
    log.info("pretrained embeddings: %s", report)
    return report
