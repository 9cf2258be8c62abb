"""``train_word2vec``: word2vec without a config file (the model is :class:`~recurrentkit.tasks.word2vec.Word2VecTask`;
recipes run it with ``recurrentkit fit -c recipes/word2vec/wikitext2-skipgram.yaml``)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import lightning as L

from ..tasks.word2vec import Word2VecTask
from .vectors import WordVectors

__all__ = ["Word2VecTask", "train_word2vec"]


def train_word2vec(sentences: Sequence[Sequence[str]] | None = None, train_file: str | os.PathLike | None = None,
                   mode: str = "sg", vector_size: int = 100, window: int = 5, min_count: int = 5,
                   negative: int = 5, sample: float = 1e-3, alpha: float = 0.025, min_alpha: float = 0.0001,
                   epochs: int = 5, batch_size: int = 4096, seed: int = 1, lower: bool = False,
                   max_lines: int | None = None, num_threads: int | None = None,
                   **data_kwargs: Any) -> tuple[WordVectors, dict[str, float]]:
    """Train word2vec without a config file; returns ``(vectors, stats)`` with ``words_per_sec``, ``seconds``.

    Arguments default to gensim's ``Word2Vec`` defaults (skip-gram here; gensim defaults to CBOW).
    """
    from recurrentkit.data.skipgram import Word2VecDataModule

    dm = Word2VecDataModule(train_file=None if train_file is None else str(train_file),
                            sentences=None if sentences is None else [list(s) for s in sentences],
                            min_count=min_count, mode=mode, window=window, sample=sample, negative=negative,
                            batch_size=batch_size, epochs=epochs, seed=seed, lower=lower, max_lines=max_lines,
                            **data_kwargs)
    task = Word2VecTask(dm.vocab_size, vector_size=vector_size, mode=mode, alpha=alpha, min_alpha=min_alpha,
                        seed=seed, words=dm.words, num_threads=num_threads)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    start = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    seconds = time.perf_counter() - start
    words = float(len(dm.corpus) * epochs)
    stats = {"seconds": seconds, "words": words, "words_per_sec": words / seconds,
             "train_words": float(len(dm.corpus)), "vocab_size": float(dm.vocab_size)}
    return task.word_vectors(), stats
