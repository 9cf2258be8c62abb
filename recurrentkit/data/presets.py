"""The one registry of data presets, and the one rule for where their files live.

A preset names local files under the data directory (and, for some language-model corpora, the Hugging Face hub
dataset with the same content as a fallback). Each preset has a ``kind``: ``"lm"`` presets are read by
:class:`~recurrentkit.data.lm.LanguageModelingDataModule`, ``"classification"`` presets by
:class:`~recurrentkit.data.classification.ClassificationDataModule`; ``options`` are the data-module arguments the
preset fills in (file format, column names, label names).

The data directory is, in order (:func:`resolve_data_dir`):

1. the ``data_dir`` argument of the data module (``--data.init_args.data_dir`` on the command line);
2. the ``RK_DATA_DIR`` environment variable;
3. ``../shared/data`` relative to the working directory, when that folder exists;

and otherwise there is none: relative preset paths then cannot be found, and the error says where it looked.

Language-model presets:

- ``ptb``: ``ptb/ptb.{train,valid,test}.txt``; hub ``ptb-text-only/ptb_text_only``, ``penn_treebank`` (column
  ``sentence``).
- ``wikitext2``: ``wikitext-2/{train,valid,test}.txt``; hub ``Salesforce/wikitext``, ``wikitext-2-v1``.
- ``tinyshakespeare``: ``tinyshakespeare/input.txt``; hub ``karpathy/tiny_shakespeare``.
- ``tinyshakespeare-bundled``: the copy inside the package (``recurrentkit/data/corpora``); no hub needed.

Classification presets:

- ``sst2``: GLUE SST-2 ``sst2/glue/{train,dev}.tsv`` (GLUE's test file has no labels, so there is no test split).
- ``sst2-sentence``: sentence-level binary SST ``sst2/sentence_binary/stsa.binary.{train,dev,test}``.

Tagging presets:

- ``ud-ewt``: UD English-EWT ``ud-ewt/en_ewt-ud-{train,dev,test}.conllu`` (read by
  :class:`~recurrentkit.data.tagging.TaggingDataModule`).

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
from typing import Any

__all__ = ["Preset", "PRESETS", "KINDS", "BUNDLED_CORPUS", "default_data_dir", "resolve_data_dir", "get_preset",
           "list_presets", "resolve_preset", "expected_local_files"]

BUNDLED_CORPUS = Path(__file__).resolve().parent / "corpora" / "tinyshakespeare.txt"
TINYSHAKESPEARE_FRACTIONS = (0.9, 0.05, 0.05)
KINDS = ("lm", "classification", "tagging")
_READERS = {"lm": "LanguageModelingDataModule", "classification": "ClassificationDataModule",
            "tagging": "TaggingDataModule"}
_KIND_WORDS = {"lm": "language-modelling", "classification": "classification", "tagging": "sequence-tagging"}


@dataclass(frozen=True)
class Preset:
    """A named data set.

    Attributes:
        name: the preset's name.
        kind: ``"lm"``, ``"classification"`` or ``"tagging"``: which data module reads it.
        files: split (``train``/``validation``/``test``) -> path relative to the data directory, or absolute.
        hub_path, hub_name, hub_text_column: the hub dataset used when the local files are missing (LM only).
        split_fractions: cut a train-only corpus by characters into train/validation/test (LM only).
        options: the data-module arguments the preset fills in, e.g. ``format``, ``text_column``, ``label_names``.
        description: one line for listings and docs.
    """

    name: str
    kind: str
    files: dict[str, str]
    hub_path: str | None = None
    hub_name: str | None = None
    hub_text_column: str = "text"
    split_fractions: tuple[float, float, float] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"preset {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")


_SST_LABELS = {"text_column": "sentence", "label_column": "label", "label_names": ["negative", "positive"]}

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        "ptb", "lm",
        {"train": "ptb/ptb.train.txt", "validation": "ptb/ptb.valid.txt", "test": "ptb/ptb.test.txt"},
        hub_path="ptb-text-only/ptb_text_only", hub_name="penn_treebank", hub_text_column="sentence",
        description="Mikolov's Penn Treebank, word level (10k vocab incl. <eos>)",
    ),
    Preset(
        "wikitext2", "lm",
        {"train": "wikitext-2/train.txt", "validation": "wikitext-2/valid.txt", "test": "wikitext-2/test.txt"},
        hub_path="Salesforce/wikitext", hub_name="wikitext-2-v1",
        description="WikiText-2 v1 (tokenized), word level (33,278 vocab incl. <eos>)",
    ),
    Preset(
        "tinyshakespeare", "lm", {"train": "tinyshakespeare/input.txt"},
        hub_path="karpathy/tiny_shakespeare", split_fractions=TINYSHAKESPEARE_FRACTIONS,
        description="Tiny Shakespeare (char-rnn), 1,115,394 characters, cut 90/5/5 by characters",
    ),
    Preset(
        "tinyshakespeare-bundled", "lm", {"train": str(BUNDLED_CORPUS)},
        split_fractions=TINYSHAKESPEARE_FRACTIONS,
        description="The Tiny Shakespeare copy shipped inside the package (no network, no data directory)",
    ),
    Preset(
        "sst2", "classification", {"train": "sst2/glue/train.tsv", "validation": "sst2/glue/dev.tsv"},
        options={"format": "tsv", **_SST_LABELS},
        description="GLUE SST-2: 67,349 training phrases/sentences, 872 dev sentences (GLUE's test has no labels)",
    ),
    Preset(
        "sst2-sentence", "classification",
        {"train": "sst2/sentence_binary/stsa.binary.train", "validation": "sst2/sentence_binary/stsa.binary.dev",
         "test": "sst2/sentence_binary/stsa.binary.test"},
        options={"format": "label-space", **_SST_LABELS},
        description="Sentence-level binary SST (Kim 2014): 6,920 / 872 / 1,821 sentences, test labelled",
    ),
    Preset(
        "ud-ewt", "tagging",
        {"train": "ud-ewt/en_ewt-ud-train.conllu", "validation": "ud-ewt/en_ewt-ud-dev.conllu",
         "test": "ud-ewt/en_ewt-ud-test.conllu"},
        options={"format": "conllu"},
        description="Universal Dependencies English-EWT, CoNLL-U: 12,544 / 2,001 / 2,077 sentences, 17 UPOS tags",
    ),
)}


def default_data_dir() -> Path | None:
    """``$RK_DATA_DIR`` if set, else ``../shared/data`` relative to the working directory if it exists, else None."""
    env = os.environ.get("RK_DATA_DIR")
    if env:
        return Path(env)
    candidate = Path.cwd().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data directory: ``data_dir`` when given, else :func:`default_data_dir`."""
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def list_presets(kind: str | None = None) -> list[str]:
    """Names of the presets (of one ``kind`` when given), sorted."""
    return sorted(n for n, p in PRESETS.items() if kind is None or p.kind == kind)


def get_preset(name: str, kind: str | None = None) -> Preset:
    """The preset called ``name``, checked to be of ``kind`` when given.

    Raises:
        ValueError: unknown name, or a preset of another kind (the message lists the presets of ``kind``).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {list_presets(kind)}")
    preset = PRESETS[name]
    if kind is not None and preset.kind != kind:
        raise ValueError(f"preset {name!r} is a {_KIND_WORDS[preset.kind]} data set, read by {_READERS[preset.kind]}; "
                         f"{_READERS[kind]} takes one of {list_presets(kind)}")
    return preset


def _local_path(rel: str, root: Path | None) -> Path | None:
    p = Path(rel)
    if p.is_absolute():
        return p
    return root / p if root is not None else None


def resolve_preset(name: str, data_dir: str | os.PathLike | None = None, kind: str | None = None
                   ) -> tuple[Preset, dict[str, str] | None]:
    """Return the preset and its local files (absolute paths) or None when they are not all present locally.

    Raises:
        ValueError: unknown preset name, or one of another kind (see :func:`get_preset`).
    """
    preset = get_preset(name, kind)
    root = resolve_data_dir(data_dir)
    files: dict[str, str] = {}
    for split, rel in preset.files.items():
        p = _local_path(rel, root)
        if p is None or not p.is_file():
            return preset, None
        files[split] = str(p)
    return preset, files


def expected_local_files(name: str, data_dir: str | os.PathLike | None = None) -> list[str]:
    """The local paths a preset looks for (for error messages; ``<data_dir>/...`` when there is no data directory)."""
    root = resolve_data_dir(data_dir)
    return [str(_local_path(rel, root) or Path("<data_dir>") / rel) for rel in get_preset(name).files.values()]
