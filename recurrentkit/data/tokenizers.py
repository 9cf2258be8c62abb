"""Tokenizers: character, whitespace word (one ``<eos>`` per line) and byte-level BPE.

Every tokenizer maps a string to a list of string tokens; a :class:`~recurrentkit.data.vocab.Vocab` then maps tokens
to ids. ``config()`` returns a JSON-able dict from which :func:`build_tokenizer` rebuilds an identical tokenizer, so a
checkpoint can carry it (the BPE merges included).

>>> WordTokenizer().tokenize("a b\\nc")
['a', 'b', '<eos>', 'c', '<eos>']
>>> CharTokenizer().tokenize("ab\\n")
['a', 'b', '\\n']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

__all__ = ["Tokenizer", "CharTokenizer", "WordTokenizer", "BPETokenizer", "build_tokenizer", "TOKENIZERS"]


class Tokenizer:
    """Base class. Subclasses set ``name`` and implement :meth:`tokenize` and :meth:`detokenize`.

    ``keeps_linebreaks`` tells the data module whether line breaks are part of the token stream (char, BPE: the
    text is read with its ``\\n`` kept) or are turned into end-of-line tokens by the tokenizer (word).
    """

    name: ClassVar[str] = "base"
    keeps_linebreaks: ClassVar[bool] = True

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into string tokens."""
        raise NotImplementedError

    def detokenize(self, tokens: list[str]) -> str:
        """Inverse of :meth:`tokenize` (exact for char and BPE; whitespace-normalised for word)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """A JSON-able dict ``{"name": ..., **kwargs}`` that :func:`build_tokenizer` turns back into this tokenizer."""
        return {"name": self.name}

    def train(self, texts: Iterable[str]) -> None:  # noqa: B027 - intentionally a no-op by default
        """Learn from the training texts. A no-op except for BPE."""

    @property
    def is_trained(self) -> bool:
        return True

    @property
    def char_level(self) -> bool:
        """Whether a token is one character (a language model then also reports bits per character)."""
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.config() == other.config()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.config().items())))

    def __repr__(self) -> str:
        kwargs = {k: v for k, v in self.config().items() if k not in ("name", "model")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


class CharTokenizer(Tokenizer):
    """Every character is a token, the newline included: ``tokenize(s) == list(s)``."""

    name = "char"

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    @property
    def char_level(self) -> bool:
        return True

    def detokenize(self, tokens: list[str]) -> str:
        return "".join(tokens)


class WordTokenizer(Tokenizer):
    """Whitespace split with one ``eos`` token at the end of every line (the PTB / WikiText convention).

    A text is cut into lines at ``\\n`` (a final ``\\n`` ends the last line, it does not open an empty one);
    every line, an empty one included, gives its words followed by ``eos``. So a text with ``L`` lines yields
    exactly ``L`` eos tokens, and reading a file line by line gives the counts of ``pytorch/examples``
    (``line.split() + ['<eos>']``). ``eos=None`` drops the end-of-line token. ``lower=True`` lowercases.

    :meth:`detokenize` puts ``join`` between the tokens of a line (a space by default) after turning every ``space``
    token into ``" "``. That reads *pre-spaced character files* back as text: a file written one symbol per token
    with ``_`` for a space (``"w i l l _ e x p a n d"``) tokenizes as it is, one token per character, and
    ``WordTokenizer(join="", space="_")`` detokenizes it to ``"will expand"``:

    >>> tok = WordTokenizer(eos=None, join="", space="_")
    >>> tok.tokenize("w i l l _ e x p a n d")
    ['w', 'i', 'l', 'l', '_', 'e', 'x', 'p', 'a', 'n', 'd']
    >>> tok.detokenize(tok.tokenize("w i l l _ e x p a n d"))
    'will expand'
    """

    name = "word"
    keeps_linebreaks = False

    def __init__(self, eos: str | None = "<eos>", lower: bool = False, join: str = " ",
                 space: str | None = None) -> None:
        for arg, val in (("eos", eos), ("space", space)):
            if val is not None and (not isinstance(val, str) or not val or any(c.isspace() for c in val)):
                raise ValueError(f"{arg} must be a non-empty string without whitespace or None, got {val!r}")
        if not isinstance(join, str) or "\n" in join:
            raise ValueError(f"join must be a string without a line break, got {join!r}")
        if space is not None and space == eos:
            raise ValueError(f"space and eos must differ, both are {space!r}")
        self.eos = eos
        self.lower = bool(lower)
        self.join = join
        self.space = space

    def tokenize(self, text: str) -> list[str]:
        if self.lower:
            text = text.lower()
        lines = text.split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        tokens: list[str] = []
        for line in lines:
            tokens.extend(line.split())
            if self.eos is not None:
                tokens.append(self.eos)
        return tokens

    @property
    def char_level(self) -> bool:
        """True for pre-spaced characters (``join=""``): each token is one symbol of the text."""
        return self.join == ""

    def detokenize(self, tokens: list[str]) -> str:
        """Lines of tokens joined by ``join`` (``space`` tokens read as ``" "``), each ``eos`` ending a line."""
        out: list[str] = []
        line: list[str] = []
        for tok in tokens:
            if self.eos is not None and tok == self.eos:
                out.append(self.join.join(line) + "\n")
                line = []
            else:
                line.append(" " if tok == self.space else tok)
        if line:
            out.append(self.join.join(line))
        return "".join(out)

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.name, "eos": self.eos, "lower": self.lower}
        # only when set: configs (and the datasets cache fingerprints made from them) stay as they were
        if self.join != " ":
            cfg["join"] = self.join
        if self.space is not None:
            cfg["space"] = self.space
        return cfg


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2 style) from the Hugging Face ``tokenizers`` library.

    Train it with :meth:`train` on the training texts; ``config()`` then holds the trained tokenizer as a JSON string
    (key ``"model"``) so that it round-trips through a checkpoint. Byte-level BPE is lossless:
    ``detokenize(tokenize(s)) == s`` for any string (line breaks are tokens, ``"Ċ"``).
    """

    name = "bpe"

    def __init__(self, vocab_size: int = 8000, min_frequency: int = 2, model: str | None = None) -> None:
        if int(vocab_size) < 257:
            raise ValueError(f"vocab_size must be >= 257 (256 byte symbols + merges), got {vocab_size}")
        if int(min_frequency) < 1:
            raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
        self.vocab_size = int(vocab_size)
        self.min_frequency = int(min_frequency)
        self._tok = None
        if model is not None:
            from tokenizers import Tokenizer as HFTokenizer

            self._tok = HFTokenizer.from_str(model)

    @property
    def is_trained(self) -> bool:
        return self._tok is not None

    def train(self, texts: Iterable[str]) -> None:
        """Learn the merges from ``texts`` (an iterable of strings, e.g. the training split's rows)."""
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, pre_tokenizers, trainers

        tok = HFTokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        self._tok = tok

    def _require_trained(self):
        if self._tok is None:
            raise RuntimeError("BPETokenizer is not trained: call train(texts) first or build it from a config()")
        return self._tok

    def tokenize(self, text: str) -> list[str]:
        return self._require_trained().encode(text, add_special_tokens=False).tokens

    def detokenize(self, tokens: list[str]) -> str:
        return self._require_trained().decoder.decode(list(tokens))

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"name": self.name, "vocab_size": self.vocab_size, "min_frequency": self.min_frequency}
        if self._tok is not None:
            cfg["model"] = self._tok.to_str()
        return cfg

    def __getstate__(self) -> dict[str, Any]:  # picklable (datasets hashes map functions by pickling)
        return self.config()

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state.pop("name", None)
        self.__init__(**state)


TOKENIZERS: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "word": WordTokenizer, "bpe": BPETokenizer}


def build_tokenizer(name_or_config: str | dict[str, Any] | Tokenizer, **kwargs: Any) -> Tokenizer:
    """Build a tokenizer from a name (``"char"``, ``"word"``, ``"bpe"``) plus kwargs, or from a ``config()`` dict.

    >>> build_tokenizer("word", lower=True).config()
    {'name': 'word', 'eos': '<eos>', 'lower': True}
    """
    if isinstance(name_or_config, Tokenizer):
        if kwargs:
            raise TypeError("kwargs cannot be combined with a Tokenizer instance")
        return name_or_config
    if isinstance(name_or_config, dict):
        cfg = dict(name_or_config)
        if "name" not in cfg:
            raise ValueError(f"a tokenizer config needs a 'name' key, got keys {sorted(cfg)}")
        name = cfg.pop("name")
        cfg.update(kwargs)
    elif isinstance(name_or_config, str):
        name, cfg = name_or_config, dict(kwargs)
    else:
        raise TypeError(f"expected a tokenizer name, config dict or Tokenizer, got {type(name_or_config).__name__}")
    if name not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of {sorted(TOKENIZERS)}")
    try:
        return TOKENIZERS[name](**cfg)
    except TypeError as err:
        raise TypeError(f"bad arguments for tokenizer {name!r}: {err}") from None
