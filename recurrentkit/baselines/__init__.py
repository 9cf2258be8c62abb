"""Count-based baselines that stand beside the neural models (they share ``recurrentkit.data``)."""

from .ngram import KneserNeyLM, TokenModel, modified_kn_discounts, read_corpus
from .snm import SparseNonNegativeLM

__all__ = ["KneserNeyLM", "SparseNonNegativeLM", "TokenModel", "modified_kn_discounts", "read_corpus"]
