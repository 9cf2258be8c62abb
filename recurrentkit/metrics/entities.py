"""Entity-level precision, recall and F1 of BIO/BIOES tag sequences, with the semantics of CoNLL's ``conlleval``.

A tag is ``O`` or ``<prefix>-<type>`` with prefix ``B`` (begin), ``I`` (inside), ``E`` (end) or ``S`` (single).
An entity is a maximal run ``(type, first, last)``. As in ``conlleval``, a chunk

* ends before ``B``, ``S`` or ``O``, after ``E`` or ``S``, and wherever the type changes;
* starts at ``B`` and ``S``, at ``I``/``E`` after ``O``, ``E`` or ``S`` (so a stray ``I-X`` opens an entity instead of
  being dropped), and wherever the type changes.

``conlleval`` itself knows only ``B``/``I``/``O`` plus a few ``E`` rules; ``E``/``S`` here follow the same rules
extended as seqeval's default (conlleval-compatible) mode does. A predicted entity counts as correct when a gold
entity has the same type and the same span; then ``P = correct / predicted``, ``R = correct / gold`` and
``F1 = 2PR / (P + R)`` (0 when undefined), micro-averaged over all entities of all sentences.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torchmetrics import Metric

__all__ = ["EntityScores", "detect_scheme", "entity_scores", "extract_entities", "split_tag"]

PREFIXES = ("B", "I", "E", "S")


def split_tag(tag: str) -> tuple[str, str]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", "")``; ValueError for anything else."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in PREFIXES:
        raise ValueError(f"tag {tag!r} is neither 'O' nor '<B|I|E|S>-<type>'")
    return prefix, kind


def detect_scheme(label_names: Iterable[str]) -> str | None:
    """``"BIO"`` or ``"BIOES"`` when every label is ``O`` or a prefixed type (``E``/``S`` present: BIOES), else
    ``None`` (e.g. part-of-speech tags, for which entity scores mean nothing)."""
    prefixes = set()
    for name in label_names:
        try:
            prefixes.add(split_tag(name)[0])
        except ValueError:
            return None
    prefixes.discard("O")
    if not prefixes:
        return None
    return "BIOES" if prefixes & {"E", "S"} else "BIO"


def _ends(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    return (prev in ("E", "S") or (prev in ("B", "I") and tag in ("B", "S", "O"))
            or (prev != "O" and prev_type != kind))


def _starts(prev: str, tag: str, prev_type: str, kind: str) -> bool:
    return (tag in ("B", "S") or (tag in ("I", "E") and prev in ("O", "E", "S"))
            or (tag != "O" and prev_type != kind))


def extract_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one sentence as ``(type, first, last)`` (inclusive token positions)."""
    entities: list[tuple[str, int, int]] = []
    start, prev, prev_type = None, "O", ""
    for position, tag in enumerate([*tags, "O"]):  # the sentence end closes an open entity
        prefix, kind = split_tag(tag)
        if start is not None and _ends(prev, prefix, prev_type, kind):
            entities.append((prev_type, start, position - 1))
            start = None
        if _starts(prev, prefix, prev_type, kind):
            start = position
        prev, prev_type = prefix, kind
    return entities


def _counts(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> tuple[int, int, int]:
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted sentences for {len(gold)} gold sentences")
    correct = n_pred = n_gold = 0
    for row, (p, g) in enumerate(zip(predicted, gold)):
        if len(p) != len(g):
            raise ValueError(f"sentence {row}: {len(p)} predicted tags for {len(g)} gold tags")
        pred_entities, gold_entities = set(extract_entities(p)), set(extract_entities(g))
        correct += len(pred_entities & gold_entities)
        n_pred += len(pred_entities)
        n_gold += len(gold_entities)
    return correct, n_pred, n_gold


def _prf(correct: float, n_pred: float, n_gold: float) -> dict[str, float]:
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def entity_scores(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """``{"precision", "recall", "f1"}`` of predicted against gold tag sequences (one list of tags per sentence)."""
    return _prf(*_counts(predicted, gold))


class EntityScores(Metric):
    """Accumulated entity precision/recall/F1 (a torchmetrics ``Metric``; counts are summed across processes).

    ``update(predicted, gold)`` takes lists of tag-string sequences; ``compute()`` returns ``{"precision",
    "recall", "f1"}`` as tensors.
    """

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for name in ("correct", "predicted", "gold"):
            self.add_state(name, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> None:
        correct, n_pred, n_gold = _counts(predicted, gold)
        self.correct += correct
        self.predicted += n_pred
        self.gold += n_gold

    def compute(self) -> dict[str, torch.Tensor]:
        scores = _prf(int(self.correct), int(self.predicted), int(self.gold))
        return {k: torch.tensor(v) for k, v in scores.items()}
