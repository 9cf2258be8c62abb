"""Token <-> id mapping with frequency order, ``<unk>``, min-frequency / max-size, and JSON save/load.

:meth:`Vocab.build` puts the ``specials`` first (in the given order), then the tokens by descending frequency with
ties broken alphabetically. So id order is frequency order, which adaptive softmax relies on (its first cluster is
the ``cutoffs[0]`` most frequent ids).

>>> v = Vocab.build([["b", "a", "b"], ["c", "b", "a"]])
>>> v.tokens, v.counts
(['<unk>', 'b', 'a', 'c'], [0, 3, 2, 1])
>>> v.encode(["a", "zzz"])
[2, 0]
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Vocab"]

_FORMAT_VERSION = 1


class Vocab:
    """An ordered list of unique tokens; a token's id is its position.

    Args:
        tokens: the tokens in id order (must be unique).
        counts: training-set frequency of each token, aligned with ``tokens`` (defaults to zeros).
        unk_token: the token unknown tokens map to; it must be in ``tokens``. ``None``: unknown tokens raise KeyError.
    """

    def __init__(self, tokens: list[str], counts: list[int] | None = None, unk_token: str | None = "<unk>") -> None:
        tokens = list(tokens)
        if not all(isinstance(t, str) for t in tokens):
            raise TypeError("Vocab tokens must all be strings")
        index: dict[str, int] = {}
        for i, tok in enumerate(tokens):
            if tok in index:
                raise ValueError(f"duplicate token {tok!r} in Vocab (ids {index[tok]} and {i})")
            index[tok] = i
        if counts is None:
            counts = [0] * len(tokens)
        counts = [int(c) for c in counts]
        if len(counts) != len(tokens):
            raise ValueError(f"counts has {len(counts)} entries but there are {len(tokens)} tokens")
        if unk_token is not None and unk_token not in index:
            raise ValueError(f"unk_token {unk_token!r} is not one of the tokens")
        self._tokens = tokens
        self._index = index
        self._counts = counts
        self.unk_token = unk_token

    @classmethod
    def build(
        cls,
        token_lists: Iterable[list[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = ("<unk>",),
    ) -> Vocab:
        """Count tokens and build a vocab.

        Args:
            token_lists: an iterable of token lists (e.g. one per line or document).
            min_freq: drop tokens seen fewer than this many times (specials are always kept).
            max_size: keep at most this many entries in total, specials included.
            specials: tokens placed first, in this order. ``"<unk>"`` among them becomes ``unk_token``.

        Returns:
            a vocab with ``counts`` set to the training frequencies (0 for specials never seen).
        """
        counter: Counter[str] = Counter()
        for toks in token_lists:
            counter.update(toks)
        return cls.from_counts(counter, min_freq=min_freq, max_size=max_size, specials=specials)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = ("<unk>",),
        unk_token: str = "<unk>",
        fold_pruned: bool = False,
    ) -> Vocab:
        """Like :meth:`build`, from precomputed token frequencies (e.g. Arrow ``value_counts``).

        ``unk_token`` (when among ``specials``) is the token unknown words map to (LM1B's is ``"<UNK>"``);
        ``fold_pruned=True`` adds the counts of the tokens pruned by ``min_freq``/``max_size`` to its count, which is
        then how often it occurs in the encoded training stream.
        """
        if int(min_freq) < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        specials = list(specials)
        if len(set(specials)) != len(specials):
            raise ValueError(f"specials contain duplicates: {specials}")
        if max_size is not None and int(max_size) < len(specials):
            raise ValueError(f"max_size={max_size} is smaller than the number of specials ({len(specials)})")
        special_set = set(specials)
        rest = [(t, int(c)) for t, c in counts.items() if t not in special_set and c >= min_freq]
        rest.sort(key=lambda tc: (-tc[1], tc[0]))
        if max_size is not None:
            rest = rest[: int(max_size) - len(specials)]
        tokens = specials + [t for t, _ in rest]
        freq = [int(counts.get(t, 0)) for t in specials] + [c for _, c in rest]
        unk = unk_token if unk_token in special_set else None
        if fold_pruned and unk is not None:
            kept = set(tokens)
            freq[specials.index(unk)] += sum(int(c) for t, c in counts.items() if t not in kept)
        return cls(tokens, freq, unk_token=unk)

    # -- lookup -----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def __iter__(self):
        return iter(self._tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.state_dict() == other.state_dict()

    def __hash__(self) -> int:
        return hash((tuple(self._tokens), self.unk_token))

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._tokens[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"Vocab(size={len(self)}, unk_token={self.unk_token!r}, tokens=[{head}{more}])"

    @property
    def tokens(self) -> list[str]:
        """The tokens in id order (a copy)."""
        return list(self._tokens)

    @property
    def counts(self) -> list[int]:
        """Training frequencies aligned with ids (a copy)."""
        return list(self._counts)

    @property
    def unk_id(self) -> int | None:
        """Id of ``unk_token`` (None if there is none)."""
        return None if self.unk_token is None else self._index[self.unk_token]

    @property
    def pad_id(self) -> int | None:
        """Id of ``"<pad>"`` if present, else None."""
        return self._index.get("<pad>")

    def token_to_id(self, token: str) -> int:
        """Id of ``token``; unknown tokens give ``unk_id`` (KeyError if the vocab has no unk token)."""
        i = self._index.get(token)
        if i is not None:
            return i
        if self.unk_token is None:
            raise KeyError(f"token {token!r} is not in the vocab and the vocab has no unk_token")
        return self._index[self.unk_token]

    def id_to_token(self, i: int) -> str:
        """Token of id ``i`` (IndexError when out of range; negative ids are rejected)."""
        i = int(i)
        if not 0 <= i < len(self._tokens):
            raise IndexError(f"id {i} is out of range for a vocab of size {len(self)}")
        return self._tokens[i]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids (unknown -> ``unk_id``; KeyError naming the token if there is no unk token)."""
        index = self._index
        unk = self.unk_id
        if unk is None:
            out = []
            for t in tokens:
                i = index.get(t)
                if i is None:
                    raise KeyError(f"token {t!r} is not in the vocab and the vocab has no unk_token")
                out.append(i)
            return out
        return [index.get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids (ints or a 1-D tensor/array) back to tokens."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        return [self.id_to_token(i) for i in ids]

    # -- persistence -----------------------------------------------------------------------------------------
    def __getstate__(self) -> str:
        # one JSON string: pickling (and ``datasets``' fingerprint hashing) stays fast for large vocabularies
        return json.dumps(self.state_dict(), ensure_ascii=False)

    def __setstate__(self, state: str) -> None:
        d = json.loads(state)
        self.__init__(d["tokens"], d.get("counts"), unk_token=d.get("unk_token"))

    def state_dict(self) -> dict[str, Any]:
        """A JSON-able dict: ``{"version", "tokens", "counts", "unk_token"}``."""
        return {"version": _FORMAT_VERSION, "tokens": list(self._tokens), "counts": list(self._counts),
                "unk_token": self.unk_token}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocab:
        """Inverse of :meth:`state_dict`."""
        if not isinstance(state, dict) or "tokens" not in state:
            raise ValueError("not a Vocab state dict: expected a dict with a 'tokens' key")
        return cls(state["tokens"], state.get("counts"), unk_token=state.get("unk_token"))

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocab as a JSON file."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.state_dict(), f, ensure_ascii=False)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocab:
        """Read a vocab written by :meth:`save` (FileNotFoundError naming the path if it is missing)."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"vocab file not found: {os.fspath(path)}")
        with open(path, encoding="utf-8") as f:
            return cls.from_state_dict(json.load(f))
