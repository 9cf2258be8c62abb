"""One-line presets for the standard language-modelling corpora.

A preset names local files under a data directory and, as a fallback, the Hugging Face hub dataset with the same
content. The data directory is, in order: the ``data_dir`` argument, the ``RK_DATA_DIR`` environment variable,
``../shared/data`` relative to the working directory (when it exists).

- ``ptb``: ``ptb/ptb.{train,valid,test}.txt``; hub ``ptb-text-only/ptb_text_only``, ``penn_treebank`` (column
  ``sentence``).
- ``wikitext2``: ``wikitext-2/{train,valid,test}.txt``; hub ``Salesforce/wikitext``, ``wikitext-2-v1``.
- ``tinyshakespeare``: ``tinyshakespeare/input.txt``; hub ``karpathy/tiny_shakespeare``.
- ``tinyshakespeare-bundled``: the copy inside the package (``recurrentkit/data/corpora``); no hub needed.

Tiny Shakespeare is one file. It is cut by characters into 90% train, 5% validation, 5% test at ``int(0.9 * n)``
and ``int(0.95 * n)``: 1,003,854 / 55,770 / 55,770 characters, the cut points of TFDS's ``tiny_shakespeare`` builder.
nanoGPT uses 90/10 with no test split; we keep a test split.

The hub fallbacks for ``ptb`` and ``tinyshakespeare`` are script-based hub datasets, which ``datasets`` >= 4 no longer
runs; the local files (or the bundled copy) are the dependable path. ``Salesforce/wikitext`` is stored as Parquet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Preset", "PRESETS", "BUNDLED_CORPUS", "default_data_dir", "resolve_preset"]

BUNDLED_CORPUS = Path(__file__).resolve().parent / "corpora" / "tinyshakespeare.txt"
TINYSHAKESPEARE_FRACTIONS = (0.9, 0.05, 0.05)


@dataclass(frozen=True)
class Preset:
    """Where a corpus lives. ``files`` maps split -> path relative to the data directory (or absolute)."""

    name: str
    files: dict[str, str]
    hub_path: str | None = None
    hub_name: str | None = None
    hub_text_column: str = "text"
    split_fractions: tuple[float, float, float] | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "ptb": Preset(
        "ptb",
        {"train": "ptb/ptb.train.txt", "validation": "ptb/ptb.valid.txt", "test": "ptb/ptb.test.txt"},
        hub_path="ptb-text-only/ptb_text_only",
        hub_name="penn_treebank",
        hub_text_column="sentence",
        description="Mikolov's Penn Treebank, word level (10k vocab incl. <eos>)",
    ),
    "wikitext2": Preset(
        "wikitext2",
        {"train": "wikitext-2/train.txt", "validation": "wikitext-2/valid.txt", "test": "wikitext-2/test.txt"},
        hub_path="Salesforce/wikitext",
        hub_name="wikitext-2-v1",
        description="WikiText-2 v1 (tokenized), word level (33,278 vocab incl. <eos>)",
    ),
    "tinyshakespeare": Preset(
        "tinyshakespeare",
        {"train": "tinyshakespeare/input.txt"},
        hub_path="karpathy/tiny_shakespeare",
        split_fractions=TINYSHAKESPEARE_FRACTIONS,
        description="Tiny Shakespeare (char-rnn), 1,115,394 characters, cut 90/5/5 by characters",
    ),
    "tinyshakespeare-bundled": Preset(
        "tinyshakespeare-bundled",
        {"train": str(BUNDLED_CORPUS)},
        split_fractions=TINYSHAKESPEARE_FRACTIONS,
        description="The Tiny Shakespeare copy shipped inside the package (no network, no data directory)",
    ),
}


def default_data_dir() -> Path | None:
    """``$RK_DATA_DIR`` if set, else ``../shared/data`` relative to the working directory if it exists, else None."""
    env = os.environ.get("RK_DATA_DIR")
    if env:
        return Path(env)
    candidate = Path.cwd().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def resolve_preset(name: str, data_dir: str | os.PathLike | None = None) -> tuple[Preset, dict[str, str] | None]:
    """Return the preset and its local files (absolute paths) or None when they are not all present locally.

    Raises:
        ValueError: unknown preset name (the message lists the known ones).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    preset = PRESETS[name]
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    files: dict[str, str] = {}
    for split, rel in preset.files.items():
        p = Path(rel)
        if not p.is_absolute():
            if root is None:
                return preset, None
            p = root / p
        if not p.is_file():
            return preset, None
        files[split] = str(p)
    return preset, files


def expected_local_files(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The local paths a preset looks for (for error messages)."""
    preset = PRESETS[name]
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    out = []
    for rel in preset.files.values():
        p = Path(rel)
        out.append(str(p if p.is_absolute() else (root / p if root is not None else Path("<data_dir>") / p)))
    return out
