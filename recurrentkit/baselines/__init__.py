"""Count-based baselines that stand beside the neural models (they share ``recurrentkit.data``)."""

from .ngram import KneserNeyLM, modified_kn_discounts, ngram_main, read_corpus

__all__ = ["KneserNeyLM", "modified_kn_discounts", "ngram_main", "read_corpus"]
