"""Evaluation metrics that torchmetrics lacks (entity-level scores of BIO/BIOES tag sequences)."""

from .entities import EntityScores, detect_scheme, entity_scores, extract_entities

__all__ = ["EntityScores", "detect_scheme", "entity_scores", "extract_entities"]
