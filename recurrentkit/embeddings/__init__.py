"""Word embeddings: word2vec (skip-gram / CBOW with negative sampling), word vectors and analogy evaluation.

>>> from recurrentkit.embeddings import WordVectors
>>> wv = WordVectors(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
>>> wv.most_similar("a", topn=1)[0][0]
'b'
"""

from . import sgns_kernel
from .analogy import AnalogyResult, SectionScore, evaluate_analogies, read_analogies
from .vectors import (
    WordVectors,
    embedding_from_vectors,
    init_embedding,
    load_word2vec_format,
    save_word2vec_format,
    vocab_tokens,
)

_LAZY = {"Word2VecTask": "recurrentkit.tasks.word2vec", "train_word2vec": "recurrentkit.embeddings.word2vec"}


def __getattr__(name: str):
    # Lightning-side names on first use: recurrentkit.tasks.word2vec itself imports this package's vectors module
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AnalogyResult",
    "SectionScore",
    "Word2VecTask",
    "WordVectors",
    "embedding_from_vectors",
    "evaluate_analogies",
    "init_embedding",
    "load_word2vec_format",
    "read_analogies",
    "save_word2vec_format",
    "sgns_kernel",
    "train_word2vec",
    "vocab_tokens",
]
