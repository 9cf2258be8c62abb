"""``TaggingDataModule``: tagged sentences (CoNLL-U, CoNLL columns, Hugging Face datasets) -> padded, length-bucketed
batches of word ids, character ids and tag ids.

Sources, chosen by ``format`` (``"auto"``: from the file suffix):

* ``conllu``: Universal Dependencies files. Ten tab-separated columns per token; the tag is the ``upos`` or
  ``xpos`` column. ``#`` comment lines, multiword-token lines (ID ``3-4``) and empty-node lines (ID ``8.1``) are
  skipped; a blank line ends a sentence.
* ``conll``: one token per line, whitespace-separated columns, the token first and the tag in ``tag_column``
  (default: the last), a blank line between sentences, ``-DOCSTART-`` lines skipped (CoNLL-2000/2003 style).
* ``json``/``jsonl``/``parquet``/``csv`` local files, or a hub dataset (``dataset=``), through
  ``datasets.load_dataset``: a list-of-tokens column and a list-of-tags column (tag names, or integers with a
  ``Sequence(ClassLabel)`` feature as in ``conll2003``'s ``ner_tags``).
* ``text`` (prediction input only): one sentence per line, tokens separated by whitespace.

The word vocabulary (``<pad>`` = 0, ``<unk>`` = 1), the character vocabulary and the tag set come from the training
split only. A tag in another split that the training split lacks raises a ``ValueError`` naming the file and line.
A batch is a dict::

    {"input_ids": LongTensor[B, T], "lengths": LongTensor[B], "chars": LongTensor[B, T, L] (0 = padding),
     "labels": LongTensor[B, T] (-100 at padding; absent without tags), "index": LongTensor[B]}
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .presets import get_preset
from .sequences import SequenceDataModule
from .vocab import Vocab

FORMATS = ("auto", "conllu", "conll", "json", "jsonl", "parquet", "csv", "text")
CONLLU_COLUMNS = {"upos": 3, "xpos": 4}
SPECIALS = ("<pad>", "<unk>")
IGNORE_INDEX = -100

@dataclass
class TaggedSplit:
    """Sentences of one split: tokens, tags (``None`` when unlabelled) and the source line of every token."""

    origin: str
    tokens: list[list[str]]
    tags: list[list[str]] | None
    lines: list[list[int]] | None = None  # 1-based file line of each token; None for dataset rows
    format: str = "conll"
    column: int | None = None  # CoNLL-U column holding the tag

    def where(self, sentence: int, position: int) -> str:
        """``"file:line"`` of a token, or ``"origin, row r, token p"`` when rows have no line."""
        if self.lines is not None:
            return f"{self.origin}:{self.lines[sentence][position]}"
        return f"{self.origin}, row {sentence + 1}, token {position + 1}"

    def __len__(self) -> int:
        return len(self.tokens)


def infer_format(path: str) -> str:
    """The format of ``path`` from its suffix: ``.conllu`` -> conllu, json/jsonl/parquet/csv, else conll."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in ("conllu", "json", "jsonl", "parquet", "csv") else "conll"


def read_conllu(path: str | os.PathLike, column: str = "upos", labelled: bool = True) -> TaggedSplit:
    """Read a CoNLL-U file: the FORM and the ``column`` (``"upos"`` or ``"xpos"``) of every plain token line."""
    if column not in CONLLU_COLUMNS:
        raise ValueError(f"column must be one of {sorted(CONLLU_COLUMNS)}, got {column!r}")
    index = CONLLU_COLUMNS[column]
    path = os.fspath(path)
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[list[int]] = []
    sent_tokens: list[str] = []
    sent_tags: list[str] = []
    sent_lines: list[int] = []

    def close() -> None:
        if sent_tokens:
            tokens.append(list(sent_tokens))
            tags.append(list(sent_tags))
            lines.append(list(sent_lines))
        sent_tokens.clear()
        sent_tags.clear()
        sent_lines.clear()

    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                close()
                continue
            if line.startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 10:
                raise ValueError(f"{path}:{number}: a CoNLL-U token line has 10 tab-separated columns, this one has "
                                 f"{len(fields)}")
            token_id = fields[0]
            if "-" in token_id or "." in token_id:  # multiword token (3-4) or empty node (8.1)
                continue
            if not token_id.isdigit():
                raise ValueError(f"{path}:{number}: the ID column holds {token_id!r}, not an integer, a range or a "
                                 "decimal")
            sent_tokens.append(fields[1])
            sent_tags.append(fields[index])
            sent_lines.append(number)
    close()
    return TaggedSplit(path, tokens, tags if labelled else None, lines, "conllu", index)


def read_conll(path: str | os.PathLike, tag_column: int = -1, labelled: bool = True) -> TaggedSplit:
    """Read a CoNLL column file: token first, tag in ``tag_column``, blank lines between sentences."""
    path = os.fspath(path)
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[list[int]] = []
    current: tuple[list[str], list[str], list[int]] = ([], [], [])
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if current[0]:
                    tokens.append(current[0])
                    tags.append(current[1])
                    lines.append(current[2])
                current = ([], [], [])
                continue
            if labelled:
                if len(fields) < 2:
                    raise ValueError(f"{path}:{number}: expected a token and a tag, found only {fields[0]!r}")
                try:
                    tag = fields[tag_column]
                except IndexError:
                    raise ValueError(f"{path}:{number}: no column {tag_column} in {len(fields)} columns") from None
                current[1].append(tag)
            current[0].append(fields[0])
            current[2].append(number)
    if current[0]:
        tokens.append(current[0])
        tags.append(current[1])
        lines.append(current[2])
    return TaggedSplit(path, tokens, tags if labelled else None, lines, "conll")


def read_text(path: str | os.PathLike) -> TaggedSplit:
    """One sentence per line, whitespace-separated tokens (blank lines skipped); no tags."""
    path = os.fspath(path)
    tokens, lines = [], []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.split():
                tokens.append(line.split())
                lines.append([number] * len(tokens[-1]))
    return TaggedSplit(path, tokens, None, lines, "text")


def from_dataset(ds: Any, origin: str, token_field: str, tag_field: str | None) -> TaggedSplit:
    """A ``datasets.Dataset`` with a token-list column (and a tag-list column of names or ClassLabel ids)."""
    if token_field not in ds.column_names:
        raise ValueError(f"{origin}: no token column {token_field!r} (columns: {ds.column_names}); set token_field")
    tags = None
    if tag_field is not None:
        if tag_field not in ds.column_names:
            raise ValueError(f"{origin}: no tag column {tag_field!r} (columns: {ds.column_names}); set tag_field")
        feature = getattr(ds.features[tag_field], "feature", None)
        names = getattr(feature, "names", None)
        tags = [[names[t] if names is not None and isinstance(t, int) else str(t) for t in row]
                for row in ds[tag_field]]
    tokens = [[str(t) for t in row] for row in ds[token_field]]
    for row, words in enumerate(tokens):
        if tags is not None and len(tags[row]) != len(words):
            raise ValueError(f"{origin}, row {row + 1}: {len(words)} tokens but {len(tags[row])} tags")
    keep = [i for i, words in enumerate(tokens) if words]
    return TaggedSplit(origin, [tokens[i] for i in keep], None if tags is None else [tags[i] for i in keep], None,
                       "dataset")


@dataclass
class EncodedTagging(Dataset):
    """Word ids, character ids and tag ids of one split; ``__getitem__`` gives ``(index, ids, chars, tags)``."""

    ids: list[list[int]]
    chars: list[list[list[int]]] | None
    tags: list[list[int]] | None = None
    lengths: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.lengths = [len(x) for x in self.ids]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[int, list[int], list[list[int]] | None, list[int] | None]:
        return (i, self.ids[i], None if self.chars is None else self.chars[i],
                None if self.tags is None else self.tags[i])


class TaggingCollator:
    """Pads ``(index, ids, chars, tags)`` items into a batch dict (see the module docstring)."""

    def __init__(self, pad_id: int = 0) -> None:
        self.pad_id = pad_id

    def __call__(self, items: Sequence[tuple]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(ids) for _, ids, _, _ in items], dtype=torch.long)
        steps = int(lengths.max())
        tokens = torch.full((len(items), steps), self.pad_id, dtype=torch.long)
        for row, (_, ids, _, _) in enumerate(items):
            tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        batch = {"input_ids": tokens, "lengths": lengths,
                 "index": torch.tensor([i for i, *_ in items], dtype=torch.long)}
        if items[0][2] is not None:
            width = max(len(word) for _, _, chars, _ in items for word in chars)
            chars = torch.zeros(len(items), steps, width, dtype=torch.long)
            for row, (_, _, words, _) in enumerate(items):
                for position, word in enumerate(words):
                    chars[row, position, :len(word)] = torch.tensor(word, dtype=torch.long)
            batch["chars"] = chars
        if items[0][3] is not None:
            labels = torch.full((len(items), steps), IGNORE_INDEX, dtype=torch.long)
            for row, (_, _, _, tags) in enumerate(items):
                labels[row, :len(tags)] = torch.tensor(tags, dtype=torch.long)
            batch["labels"] = labels
        return batch


class TaggingDataModule(SequenceDataModule):
    """Sequence-tagging data: read, build vocabularies and the tag set on train, pad, bucket by length.

    Args:
        preset: a tagging preset of :mod:`recurrentkit.data.presets` (``"ud-ewt"``: UD English-EWT train/dev/test);
            fills the file and format arguments left at ``None``.
        data_dir: where relative paths are looked up after the working directory; default
            :func:`~recurrentkit.data.presets.default_data_dir` (``$RK_DATA_DIR``, else ``../shared/data``).
        train_file, val_file, test_file: local files (see the module docstring for formats).
        predict_file: sentences to tag (CoNLL-U, CoNLL columns or plain text; tags in it are ignored).
        dataset, dataset_config: a hub dataset name (or a local dataset folder) for ``datasets.load_dataset``, used
            instead of the files, with splits ``train_split``, ``val_split``, ``test_split`` (``None``: no split).
        format: ``"auto"`` (from each file's suffix), ``"conllu"``, ``"conll"``, ``"json"``, ``"jsonl"``,
            ``"parquet"``, ``"csv"``.
        column: CoNLL-U tag column, ``"upos"`` or ``"xpos"``.
        tag_column: CoNLL column-file tag column (default ``-1``, the last).
        token_field, tag_field: list columns of dataset sources (default ``"tokens"`` and ``"tags"``).
        label_names: the tag set in index order (default: the sorted distinct training tags).
        lowercase: lowercase words for the word vocabulary (characters keep their case).
        min_freq, max_vocab_size: word-vocabulary pruning (``<pad>`` = 0 and ``<unk>`` = 1 are always in).
        characters: also produce character ids (``chars``) for character-level word features.
        max_word_length: characters kept per word (the rest are cut).
        batch_size, eval_batch_size: sentences per training / evaluation batch.
        bucketing: batch sentences of similar length (:class:`~recurrentkit.data.bucketing.BucketBatchSampler`).
        pool_batches: batches per bucketing pool.
        num_workers: DataLoader workers.
        seed: seed of the training order.

    Under DDP run with ``Trainer(use_distributed_sampler=False)``: the bucketing sampler shards by rank itself.
    """

    def __init__(self, preset: str | None = None, data_dir: str | None = None, train_file: str | None = None,
                 val_file: str | None = None, test_file: str | None = None, predict_file: str | None = None,
                 dataset: str | None = None, dataset_config: str | None = None, train_split: str = "train",
                 val_split: str | None = "validation", test_split: str | None = "test", format: str | None = None,
                 column: str = "upos", tag_column: int = -1, token_field: str = "tokens", tag_field: str = "tags",
                 label_names: list[str] | None = None, lowercase: bool = False, min_freq: int = 1,
                 max_vocab_size: int | None = None, characters: bool = True, max_word_length: int = 30,
                 batch_size: int = 32, eval_batch_size: int | None = None, bucketing: bool = True,
                 pool_batches: int = 50, num_workers: int = 0, seed: int = 0) -> None:
        defaults = self.preset_arguments(get_preset(preset, kind="tagging")) if preset is not None else {}
        super().__init__(preset=preset, data_dir=data_dir,
                         train_file=train_file if train_file is not None else defaults.get("train_file"),
                         val_file=val_file if val_file is not None else defaults.get("val_file"),
                         test_file=test_file if test_file is not None else defaults.get("test_file"),
                         predict_file=predict_file, dataset=dataset, dataset_config=dataset_config,
                         train_split=train_split, val_split=val_split, test_split=test_split, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, bucketing=bucketing, pool_batches=pool_batches,
                         num_workers=num_workers, seed=seed)
        self.format = format or defaults.get("format") or "auto"
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose one of {FORMATS}")
        if column not in CONLLU_COLUMNS:
            raise ValueError(f"column must be one of {sorted(CONLLU_COLUMNS)}, got {column!r}")
        if max_word_length < 1:
            raise ValueError(f"max_word_length must be >= 1, got {max_word_length}")
        self.column, self.tag_column = column, tag_column
        self.token_field, self.tag_field = token_field, tag_field
        self._given_label_names = list(label_names) if label_names else None
        self.lowercase, self.min_freq, self.max_vocab_size = lowercase, min_freq, max_vocab_size
        self.characters, self.max_word_length = characters, max_word_length
        self.vocab: Vocab | None = None
        self.char_vocab: Vocab | None = None
        self._label_names: list[str] | None = None
        self._label_index: dict[str, int] | None = None

    # --- sources --------------------------------------------------------------------------------------------------
    def _from_file(self, path: str, stage: str) -> TaggedSplit:
        fmt = infer_format(path) if self.format == "auto" or stage == "predict" else self.format
        if stage == "predict" and fmt == "conll" and Path(path).suffix.lower() == ".txt":
            fmt = "text"
        return self._read_file(path, fmt, labelled=stage != "predict")

    def _from_dataset(self, ds: Any, origin: str, stage: str) -> TaggedSplit:
        return from_dataset(ds, origin, self.token_field, self.tag_field)

    def _read_file(self, path: str, fmt: str, labelled: bool) -> TaggedSplit:
        if fmt == "conllu":
            return read_conllu(path, self.column, labelled)
        if fmt == "conll":
            return read_conll(path, self.tag_column, labelled)
        if fmt == "text":
            if labelled:
                raise ValueError(f"{path}: plain text has no tags; it can only be a predict_file")
            return read_text(path)
        from datasets import load_dataset

        builder = "json" if fmt == "jsonl" else fmt
        ds = load_dataset(builder, data_files={"split": path}, split="split")
        return from_dataset(ds, path, self.token_field, self.tag_field if labelled else None)

    # --- vocabularies and the tag set (training split only) -------------------------------------------------------
    def _word(self, token: str) -> str:
        return token.lower() if self.lowercase else token

    def prepare_vocab(self) -> None:
        """Build the word vocabulary, the character vocabulary and the tag set from the training split (once)."""
        if self.vocab is not None:
            return
        raw = self.raw_split("train")
        if raw.tags is None:
            raise ValueError(f"{raw.origin}: the training split has no tags")
        self.vocab = Vocab.build(([self._word(t) for t in s] for s in raw.tokens), min_freq=self.min_freq,
                                 max_size=self.max_vocab_size, specials=SPECIALS)
        if self.characters:
            self.char_vocab = Vocab.build((list(t[:self.max_word_length]) for s in raw.tokens for t in s),
                                          specials=SPECIALS)
        if self._given_label_names is not None:
            names = self._given_label_names
        else:
            names = sorted({tag for sentence in raw.tags for tag in sentence})
        self._set_labels(names)

    def _set_labels(self, names: Sequence[str]) -> None:
        if len(set(names)) != len(names):
            raise ValueError(f"label_names has duplicates: {list(names)}")
        self._label_names = list(names)
        self._label_index = {name: i for i, name in enumerate(self._label_names)}

    def encode_tokens(self, sentences: Sequence[Sequence[str]]) -> tuple[list[list[int]], list[list[list[int]]] | None]:
        """Word ids and (with ``characters``) character ids of tokenized sentences."""
        self.prepare_vocab()
        ids = [self.vocab.encode([self._word(t) for t in s]) for s in sentences]
        chars = None
        if self.char_vocab is not None:
            chars = [[self.char_vocab.encode(list(t[:self.max_word_length])) for t in s] for s in sentences]
        return ids, chars

    def _tag_ids(self, raw: TaggedSplit) -> list[list[int]]:
        out = []
        for row, sentence in enumerate(raw.tags):
            ids = []
            for position, tag in enumerate(sentence):
                index = self._label_index.get(tag)
                if index is None:
                    raise ValueError(f"{raw.where(row, position)}: tag {tag!r} is not in the tag set of the training "
                                     f"data ({len(self._label_names)} tags: {', '.join(self._label_names)})")
                ids.append(index)
            out.append(ids)
        return out

    def encoded(self, stage: str) -> EncodedTagging:
        """The encoded split of ``stage`` (``"train"``, ``"val"``, ``"test"``, ``"predict"``), built once."""
        self.prepare_vocab()
        if stage not in self._encoded:
            raw = self.raw_split(stage)
            ids, chars = self.encode_tokens(raw.tokens)
            tags = self._tag_ids(raw) if raw.tags is not None and stage != "predict" else None
            self._encoded[stage] = EncodedTagging(ids, chars, tags)
        return self._encoded[stage]

    # --- what the CLI links into the model ------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        self.prepare_vocab()
        return len(self.vocab)

    @property
    def char_vocab_size(self) -> int:
        """Characters including ``<pad>`` = 0 and ``<unk>`` = 1; 0 when ``characters`` is off."""
        self.prepare_vocab()
        return len(self.char_vocab) if self.char_vocab is not None else 0

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def label_names(self) -> list[str]:
        """The tags in index order."""
        self.prepare_vocab()
        return list(self._label_names)

    def collate(self, data: EncodedTagging) -> TaggingCollator:
        """Pads a batch of ``data`` (see the module docstring)."""
        return TaggingCollator(self.vocab.pad_id)

    # --- writing predictions --------------------------------------------------------------------------------------
    def default_predictions_path(self) -> str:
        """``<predict_file stem>.predictions.conllu`` for CoNLL-U input, else ``.predictions.tsv``."""
        raw = self.raw_split("predict")
        suffix = ".predictions.conllu" if raw.format == "conllu" else ".predictions.tsv"
        return str(Path(raw.origin).with_suffix(suffix))

    def write_predictions(self, predictions: Sequence[Mapping[str, torch.Tensor]], path: str | None = None) -> str:
        """Write ``predict_step`` outputs (dicts with ``tags [B, T]``, ``lengths``, ``index``): a CoNLL-U input is
        copied with its tag column (``column``) replaced, anything else becomes ``token<TAB>tag`` lines with a blank
        line after each sentence. Returns the path written."""
        raw = self.raw_split("predict")
        names = self.label_names
        tags: list[list[str] | None] = [None] * len(raw)
        for batch in predictions:
            for row, (index, length) in enumerate(zip(batch["index"].tolist(), batch["lengths"].tolist())):
                tags[index] = [names[t] for t in batch["tags"][row, :length].tolist()]
        missing = [i for i, t in enumerate(tags) if t is None]
        if missing:
            raise ValueError(f"no predictions for {len(missing)} of {len(raw)} sentences (first: {missing[0]})")
        path = path or self.default_predictions_path()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        if raw.format == "conllu":
            with open(raw.origin, encoding="utf-8") as handle:
                lines = handle.read().split("\n")
            for sentence, numbers in enumerate(raw.lines):
                for position, number in enumerate(numbers):
                    fields = lines[number - 1].rstrip("\r").split("\t")
                    fields[raw.column] = tags[sentence][position]
                    lines[number - 1] = "\t".join(fields)
            text = "\n".join(lines)
        else:
            text = "".join("".join(f"{t}\t{g}\n" for t, g in zip(tokens, sentence_tags)) + "\n"
                           for tokens, sentence_tags in zip(raw.tokens, tags))
        Path(path).write_text(text, encoding="utf-8")
        return path

    # --- checkpointing: the vocabularies travel with the model ----------------------------------------------------
    def preprocessing_state(self) -> dict[str, Any]:
        """Word and character vocabularies, tag names and reading options: what tagging raw tokens needs."""
        self.prepare_vocab()
        return {"vocab": self.vocab.state_dict(),
                "char_vocab": None if self.char_vocab is None else self.char_vocab.state_dict(),
                "label_names": list(self._label_names), "lowercase": self.lowercase,
                "max_word_length": self.max_word_length}

    def state_dict(self) -> dict[str, Any]:
        return self.preprocessing_state() if self.vocab is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Adopt a checkpoint's vocabularies and tag set (so predictions use the training ids)."""
        if not state:
            return
        self.vocab = Vocab.from_state_dict(state["vocab"])
        self.char_vocab = Vocab.from_state_dict(state["char_vocab"]) if state.get("char_vocab") else None
        self.characters = self.char_vocab is not None
        self._set_labels(state["label_names"])
        self.lowercase = state.get("lowercase", False)
        self.max_word_length = state.get("max_word_length", self.max_word_length)
        self._encoded = {}
