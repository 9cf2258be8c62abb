"""Evaluation metrics that torchmetrics lacks: entity-level scores of BIO/BIOES tag sequences, and the known-word
rate of generated text."""

from .entities import EntityScores, detect_scheme, entity_scores, extract_entities
from .words import known_word_rate, split_words

__all__ = ["EntityScores", "detect_scheme", "entity_scores", "extract_entities", "known_word_rate", "split_words"]
