"""Known-word rate: how much of a generated text is made of words that occur in a reference (training) text.

A character-level model that has learnt the corpus spells its words; one that has not produces plausible-looking
non-words. The rate is the share of the sample's words (runs of letters and digits: text split on whitespace and
punctuation) found in the reference's word set, case-sensitive:

    rate = |{w in words(sample) : w in words(reference)}| / |words(sample)|

counting every occurrence in the sample (a word repeated ten times counts ten times).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

_WORD = re.compile(r"[^\W_]+")  # letters and digits; whitespace, punctuation and '_' separate words


def split_words(text: str) -> list[str]:
    """The words of ``text``: maximal runs of letters and digits (``"I'll go."`` -> ``["I", "ll", "go"]``)."""
    return _WORD.findall(text)


def known_word_rate(samples: str | Iterable[str], reference: str | Collection[str]) -> float:
    """Share of the words of ``samples`` (one text or several) that occur in ``reference`` (a text, split the same
    way, or a ready set of words). Raises ``ValueError`` if the samples hold no word at all."""
    known = set(split_words(reference)) if isinstance(reference, str) else set(reference)
    texts = [samples] if isinstance(samples, str) else list(samples)
    words = [w for text in texts for w in split_words(text)]
    if not words:
        raise ValueError("the samples contain no words (only whitespace and punctuation, or nothing)")
    return sum(w in known for w in words) / len(words)


__all__ = ["known_word_rate", "split_words"]
