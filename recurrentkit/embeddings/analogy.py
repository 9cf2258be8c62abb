"""Word-analogy accuracy on ``questions-words.txt`` (Mikolov et al., 2013), with gensim's counting rules.

This follows ``gensim.models.KeyedVectors.evaluate_word_analogies`` (gensim 4.4):

* only the first ``restrict_vocab`` words (id order = frequency order) are used, as candidates and as questions;
* ``case_insensitive=True`` upper-cases the question words and the vocabulary; a word with several case variants
  maps to the one with the lowest id (the most frequent);
* a question with a word outside that restricted vocabulary is skipped (counted in ``oov``), or counted wrong with
  ``dummy4unknown=True``;
* the answer is the 3CosAdd best ``argmax cos(w, û_b - û_a + û_c)`` among the top 5 neighbours, skipping the three
  question rows and any candidate whose (upper-cased) form equals a question word;
* sections whose name starts with ``gram`` are syntactic, the others semantic; ``total`` is all sections.

The questions are solved in batches with one matrix product per batch, not one at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = ["AnalogyResult", "SectionScore", "evaluate_analogies", "read_analogies"]


@dataclass
class SectionScore:
    """Correct / attempted questions of one section (or a group of sections)."""

    name: str
    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        """``correct / total`` (0.0 when nothing was attempted)."""
        return self.correct / self.total if self.total else 0.0


@dataclass
class AnalogyResult:
    """Semantic, syntactic and total accuracy plus per-section scores and the OOV count."""

    semantic: SectionScore
    syntactic: SectionScore
    total: SectionScore
    sections: list[SectionScore] = field(default_factory=list)
    oov: int = 0
    questions: int = 0

    @property
    def oov_ratio(self) -> float:
        """Fraction of well-formed questions that had a word outside the restricted vocabulary."""
        return self.oov / self.questions if self.questions else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"semantic": self.semantic.accuracy, "syntactic": self.syntactic.accuracy,
                "total": self.total.accuracy, "attempted": self.total.total, "oov": self.oov,
                "questions": self.questions}

    def __str__(self) -> str:
        s, y, t = self.semantic, self.syntactic, self.total
        return (f"semantic {100 * s.accuracy:.2f}% ({s.correct}/{s.total}), syntactic {100 * y.accuracy:.2f}% "
                f"({y.correct}/{y.total}), total {100 * t.accuracy:.2f}% ({t.correct}/{t.total}); "
                f"{self.oov}/{self.questions} questions skipped as OOV")


def read_analogies(path: str | os.PathLike) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    """Parse a questions file into ``[(section, [(a, b, c, expected), ...]), ...]``.

    Lines starting with ``": "`` open a section; lines without exactly four words are skipped (as gensim does).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a question before the first section header (the line number is named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"analogy questions file not found: {path}")
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f):
            if line.startswith(": "):
                sections.append((line.lstrip(": ").strip(), []))
                continue
            if not sections:
                raise ValueError(f"missing section header before line #{line_no} in {path}")
            words = line.split()
            if len(words) != 4:
                continue
            sections[-1][1].append((words[0], words[1], words[2], words[3]))
    return sections


def evaluate_analogies(vectors, path: str | os.PathLike, restrict_vocab: int = 30000, case_insensitive: bool = True,
                       dummy4unknown: bool = False, topn: int = 5, batch_size: int = 1024) -> AnalogyResult:
    """Analogy accuracy of ``vectors`` (a :class:`~recurrentkit.embeddings.vectors.WordVectors`) on ``path``.

    See the module docstring for the rules. Returns an :class:`AnalogyResult`.
    """
    if restrict_vocab < 1:
        raise ValueError(f"restrict_vocab must be >= 1, got {restrict_vocab}")
    norm = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    limit = min(int(restrict_vocab), len(vectors))
    ok_keys = vectors.words[:limit]
    ok_vocab: dict[str, int] = {}
    for i in range(limit - 1, -1, -1):  # reversed, so the lowest id of a case-folded word wins
        ok_vocab[norm(ok_keys[i])] = i
    folded = [norm(w) for w in ok_keys]
    unit = vectors.unit_vectors[:limit]

    sections = read_analogies(path)
    result = AnalogyResult(SectionScore("semantic"), SectionScore("syntactic"), SectionScore("total"))
    for name, questions in sections:
        score = SectionScore(name)
        group = result.syntactic if name.startswith("gram") else result.semantic
        valid: list[tuple[str, str, str, str]] = []
        for q in questions:
            result.questions += 1
            q = tuple(norm(w) for w in q)
            if all(w in ok_vocab for w in q):
                valid.append(q)
            else:
                result.oov += 1
                if dummy4unknown:
                    score.total += 1
        for start in range(0, len(valid), batch_size):
            batch = valid[start:start + batch_size]
            ids = torch.tensor([[ok_vocab[w] for w in q[:3]] for q in batch])  # a, b, c
            query = unit[ids[:, 1]] + unit[ids[:, 2]] - unit[ids[:, 0]]
            query = query / query.norm(dim=1, keepdim=True).clamp_min(1e-12)
            sims = query @ unit.T
            sims.scatter_(1, ids, -float("inf"))  # most_similar excludes the query rows
            k = min(topn, max(limit - 3, 1))
            top = sims.topk(k, dim=1).indices.tolist()
            for q, cands in zip(batch, top):
                ignore = set(q[:3])
                predicted = None
                for j in cands:
                    predicted = folded[j]
                    if predicted not in ignore:
                        break
                score.total += 1
                score.correct += int(predicted == q[3])
        result.sections.append(score)
        for agg in (group, result.total):
            agg.correct += score.correct
            agg.total += score.total
    return result
