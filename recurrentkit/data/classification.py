"""``ClassificationDataModule``: labelled sentences from Hugging Face ``datasets`` -> padded, length-bucketed batches.

Sources: a hub dataset (or a local dataset folder) through ``load_dataset(dataset, dataset_config)``, or local
files per split (tsv/csv/json/jsonl through ``load_dataset``'s packaged builders; ``label-space`` for
``"label sentence"`` lines such as SST's ``stsa.binary.*``). The tokenizer and vocabulary are built on the training
split only. A batch is a dict::

    {"input_ids": LongTensor[B, T] (batch-first, padded with pad_id), "lengths": LongTensor[B],
     "labels": LongTensor[B] (absent for predict), "index": LongTensor[B] (row of the example in its split)}

Bad input raises a ``ValueError`` naming the file and row: a missing label column, a label not in the label set,
an empty text, an empty split.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .presets import get_preset
from .sequences import SequenceDataModule
from .tokenizers import Tokenizer, build_tokenizer
from .vocab import Vocab

FORMATS = ("auto", "tsv", "csv", "json", "jsonl", "label-space", "text")
SPECIALS = ("<pad>", "<unk>")

@dataclass
class RawSplit:
    """One split as loaded: texts, raw labels (``None`` when unlabelled) and where each row came from."""

    name: str
    origin: str
    texts: list[Any]
    labels: list[Any] | None
    first_line: int | None = None  # file line of row 0 (1-based), None when rows have no line (hub, json array)
    features: Any = None
    rows: list[int] | None = None  # source rows of the examples when the split was carved from a larger one

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, row: int) -> str:
        """``"file, row i (line n)"``: 1-based data row of the source, plus the file line when there is one."""
        row = self.rows[row] if self.rows is not None else row
        line = f" (line {self.first_line + row})" if self.first_line is not None else ""
        return f"{self.origin}, row {row + 1}{line}"

    def subset(self, name: str, rows: Sequence[int]) -> RawSplit:
        """The examples at ``rows`` as split ``name``; error messages still name their rows in the source."""
        rows = list(rows)
        labels = None if self.labels is None else [self.labels[i] for i in rows]
        source_rows = rows if self.rows is None else [self.rows[i] for i in rows]
        return RawSplit(name, self.origin, [self.texts[i] for i in rows], labels, self.first_line, self.features,
                        source_rows)


def holdout_rows(labels: Sequence[Any], fraction: float, seed: int = 0) -> list[int]:
    """Rows to hold out for validation: ``round(fraction * n)`` of the ``n`` examples, stratified by label.

    Each label keeps its share: it gives ``floor(fraction * n_label)`` rows, and the rows still missing go to the
    labels with the largest remainders, preferring labels that keep at least one training example. Which rows a
    label gives is a seeded shuffle, so the same ``(labels, fraction, seed)`` always gives the same rows.

    Raises:
        ValueError: ``fraction`` not in (0, 1), or it leaves the validation or the training part empty.
    """
    n = len(labels)
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {fraction}")
    total = round(float(fraction) * n)
    if total < 1 or total >= n:
        part = "validation" if total < 1 else "training"
        raise ValueError(f"val_fraction={fraction} of {n} training examples leaves an empty {part} split "
                         f"({total} held out); use a fraction that holds out between 1 and {n - 1} examples")
    groups: dict[Any, list[int]] = {}
    for row, label in enumerate(labels):
        key = label.strip() if isinstance(label, str) else label
        groups.setdefault(key if _hashable(key) else repr(key), []).append(row)
    members = list(groups.values())
    exact = [float(fraction) * len(rows) for rows in members]
    quota = [int(q) for q in exact]
    by_remainder = sorted(range(len(members)),
                          key=lambda g: (quota[g] + 1 >= len(members[g]), quota[g] - exact[g], g))
    for g in by_remainder[: total - sum(quota)]:
        quota[g] += 1
    rng = random.Random(seed)
    held: list[int] = []
    for rows, q in zip(members, quota):
        shuffled = list(rows)
        rng.shuffle(shuffled)
        held.extend(shuffled[:q])
    return sorted(held)


@dataclass
class EncodedSplit(Dataset):
    """Token ids (and label indices) of one split; ``__getitem__`` gives ``(index, ids, label)``."""

    ids: list[list[int]]
    labels: list[int] | None = None
    texts: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[int, list[int], int]:
        return i, self.ids[i], -1 if self.labels is None else self.labels[i]

    @property
    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


class PadCollator:
    """Pads ``(index, ids, label)`` items into a batch dict (see the module docstring)."""

    def __init__(self, pad_id: int, with_labels: bool = True) -> None:
        self.pad_id, self.with_labels = pad_id, with_labels

    def __call__(self, items: Sequence[tuple[int, list[int], int]]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(ids) for _, ids, _ in items], dtype=torch.long)
        tokens = torch.full((len(items), int(lengths.max())), self.pad_id, dtype=torch.long)
        for row, (_, ids, _) in enumerate(items):
            tokens[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        batch = {"input_ids": tokens, "lengths": lengths,
                 "index": torch.tensor([i for i, _, _ in items], dtype=torch.long)}
        if self.with_labels:
            batch["labels"] = torch.tensor([y for _, _, y in items], dtype=torch.long)
        return batch


def _infer_format(path: str) -> str:
    suffix = Path(path).suffix.lower()
    formats = {".tsv": "tsv", ".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".txt": "text"}
    if suffix not in formats:
        raise ValueError(f"cannot tell the format of {path} from its suffix {suffix!r}; pass format= one of "
                         f"{FORMATS[1:]}")
    return formats[suffix]


def _split_label_space(batch: dict[str, list[str]]) -> dict[str, list[str]]:
    """``"label sentence"`` lines -> label and sentence columns (an unparseable line keeps label ``None``)."""
    labels, texts = [], []
    for line in batch["text"]:
        head, _, rest = line.strip().partition(" ")
        labels.append(head if rest or head else None)
        texts.append(rest)
    return {"label": labels, "sentence": texts}


def load_file_split(path: str | os.PathLike, name: str, fmt: str, text_column: str, label_column: str | None
                    ) -> RawSplit:
    """Load one local file through ``datasets.load_dataset`` (``label_column=None``: texts only)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} file not found: {path}")
    try:
        return _load_file_split(path, name, fmt, text_column, label_column)
    except ValueError as err:
        if "corresponds to no data" in str(err):  # datasets' message for a file without rows
            raise ValueError(f"{path}: the {name} split is empty") from None
        raise


def _load_file_split(path: str, name: str, fmt: str, text_column: str, label_column: str | None) -> RawSplit:
    from datasets import load_dataset

    fmt = _infer_format(path) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    first_line = 1
    if fmt != "json" and fmt != "jsonl":
        from .checks import check_local_files

        check_local_files(path, "\t" if fmt == "tsv" else None)  # names the file, line and column
    if fmt in ("tsv", "csv"):
        # QUOTE_NONE: SST text holds bare quotes; na_filter=False: the words "nan"/"null" stay text
        kwargs = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
        ds = load_dataset("csv", data_files={name: path}, split=name, na_filter=False, **kwargs)
        first_line = 2  # header
    elif fmt in ("json", "jsonl"):
        ds = load_dataset("json", data_files={name: path}, split=name)
        first_line = None if _is_json_array(path) else 1  # jsonl: one object per line
    else:  # text or label-space: one example per line
        ds = load_dataset("text", data_files={name: path}, split=name)
        if fmt == "label-space":
            ds = ds.map(_split_label_space, batched=True, remove_columns=["text"])
        else:
            ds = ds.rename_column("text", text_column) if text_column != "text" else ds
    if fmt == "label-space":
        text_column = "sentence" if text_column not in ds.column_names else text_column
        label_column = None if label_column is None else "label"
    return _from_dataset(ds, name, path, text_column, label_column, first_line)


def _is_json_array(path: str) -> bool:
    with open(path, encoding="utf-8") as handle:
        for char in iter(lambda: handle.read(1), ""):
            if not char.isspace():
                return char == "["
    return False


def _from_dataset(ds: Any, name: str, origin: str, text_column: str, label_column: str | None,
                  first_line: int | None) -> RawSplit:
    if text_column not in ds.column_names:
        raise ValueError(f"{origin}: no text column {text_column!r} in the {name} split (columns: {ds.column_names})")
    labels = None
    if label_column is not None:
        if label_column not in ds.column_names:
            raise ValueError(f"{origin}: no label column {label_column!r} in the {name} split "
                             f"(columns: {ds.column_names}); set label_column")
        labels = ds[label_column]
    return RawSplit(name, origin, ds[text_column], labels, first_line, ds.features.get(label_column))


class ClassificationDataModule(SequenceDataModule):
    """Sentence classification data: load, tokenize (vocab from train only), pad, bucket by length.

    Args:
        preset: ``"sst2"`` (GLUE train/dev; its test has no labels) or ``"sst2-sentence"`` (``stsa.binary``
            train/dev/test). It fills every file/format/column/label argument left at ``None``.
        data_dir: where relative file paths are found (after the working directory); default
            :func:`~recurrentkit.data.presets.default_data_dir`: ``$RK_DATA_DIR``, else ``../shared/data`` if it exists.
        train_file, val_file, test_file: local files (tsv/csv/json/jsonl/label-space); relative paths are tried
            as given, then under ``data_dir``.
        predict_file: texts to label (a ``.txt`` with one text per line, or a table with ``text_column``).
        dataset, dataset_config: a hub dataset (or a local dataset folder) for ``load_dataset``; used instead of
            the files, with the split names ``train_split``, ``val_split``, ``test_split`` (``None``: no split).
        format: ``"auto"`` (from the suffix), ``"tsv"``, ``"csv"``, ``"json"``, ``"jsonl"``, ``"label-space"``.
        text_column, label_column: column names (default ``"sentence"`` and ``"label"``).
        label_names: class names, index order. Default: the dataset's ``ClassLabel`` names, else the sorted
            distinct training labels. Integer labels index ``label_names``; string labels must be one of them.
        tokenizer: a tokenizer name or ``config()`` dict (default ``WordTokenizer(eos=None)``).
        lowercase: lowercase the text before tokenizing.
        min_freq, max_vocab_size: vocabulary pruning (``<pad>``=0 and ``<unk>``=1 are always in).
        max_length: truncate sequences to this many tokens.
        batch_size, eval_batch_size: examples per training / evaluation batch.
        bucketing: batch examples of similar length (:class:`BucketBatchSampler`); ``False``: plain shuffling.
        pool_batches: batches per bucketing pool.
        num_workers: DataLoader workers.
        seed: seed of the training order and of the ``val_fraction`` split.
        val_fraction: hold out this fraction of the training examples as the validation split (stratified by
            label, seeded by ``seed``; see :func:`holdout_rows`), for data with no validation file. The vocabulary
            and label set are then built on the remaining training examples only. Not together with ``val_file``
            (nor a preset that has one) or a hub ``val_split``.

    Under DDP the training sampler splits the data across ranks itself: run with
    ``Trainer(use_distributed_sampler=False)`` (as for the language-model data).
    """

    def __init__(self, preset: str | None = None, data_dir: str | None = None, train_file: str | None = None,
                 val_file: str | None = None, test_file: str | None = None, predict_file: str | None = None,
                 dataset: str | None = None, dataset_config: str | None = None, train_split: str = "train",
                 val_split: str | None = "validation", test_split: str | None = "test", format: str | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 label_names: list[str] | None = None, tokenizer: str | dict[str, Any] | None = None,
                 lowercase: bool = False, min_freq: int = 1, max_vocab_size: int | None = None,
                 max_length: int | None = None, batch_size: int = 32, eval_batch_size: int | None = None,
                 bucketing: bool = True, pool_batches: int = 50, num_workers: int = 0, seed: int = 0,
                 val_fraction: float | None = None) -> None:
        defaults = self.preset_arguments(get_preset(preset, kind="classification")) if preset is not None else {}
        given = {"train_file": train_file, "val_file": val_file, "test_file": test_file, "format": format,
                 "text_column": text_column, "label_column": label_column, "label_names": label_names}
        if preset and any(given[k] is not None for k in ("train_file", "val_file", "test_file")):
            defaults.update({k: None for k in ("train_file", "val_file", "test_file")})
        opts = {k: v if v is not None else defaults.get(k) for k, v in given.items()}
        super().__init__(preset=preset, data_dir=data_dir, train_file=opts["train_file"], val_file=opts["val_file"],
                         test_file=opts["test_file"], predict_file=predict_file, dataset=dataset,
                         dataset_config=dataset_config, train_split=train_split, val_split=val_split,
                         test_split=test_split, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         bucketing=bucketing, pool_batches=pool_batches, num_workers=num_workers, seed=seed)
        self.format = opts["format"] or "auto"
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; choose one of {FORMATS}")
        self.text_column = opts["text_column"] or "sentence"
        self.label_column = opts["label_column"] or "label"
        self._given_label_names = list(opts["label_names"]) if opts["label_names"] else None
        self.tokenizer_spec = tokenizer if tokenizer is not None else {"name": "word", "eos": None}
        self.lowercase, self.min_freq, self.max_vocab_size = lowercase, min_freq, max_vocab_size
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.max_length = max_length
        self.val_fraction = None if val_fraction is None else float(val_fraction)
        if self.val_fraction is not None:
            self._check_val_fraction(preset, val_file)
        self.tokenizer: Tokenizer | None = None
        self.vocab: Vocab | None = None
        self._label_names: list[str] | None = None
        self._label_index: dict[Any, int] | None = None

    def _check_val_fraction(self, preset: str | None, val_file: str | None) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {self.val_fraction}")
        if self.dataset is not None and self.splits["val"] is not None:
            raise ValueError(f"val_fraction carves the validation split out of the training split, but val_split="
                             f"{self.splits['val']!r} names one in {self.dataset!r} too: set val_split=None")
        if self.dataset is None and self.val_file is not None:
            given = (f"val_file={val_file!r}" if val_file is not None
                     else f"preset {preset!r} has its validation file {self.val_file!r}; give train_file (and "
                          "test_file) to carve a validation split from the training file instead")
            raise ValueError(f"give either a validation file or val_fraction, not both: {given}")

    # --- sources --------------------------------------------------------------------------------------------
    def has_split(self, stage: str) -> bool:
        """Whether the ``"train"``/``"val"``/``"test"``/``"predict"`` split is configured."""
        return (stage == "val" and self.val_fraction is not None) or super().has_split(stage)

    def raw_split(self, stage: str) -> RawSplit:
        """Load (once) the split of ``stage`` as texts and raw labels.

        With ``val_fraction`` the ``"train"`` and ``"val"`` splits are the two parts of the training source.
        """
        if self.val_fraction is not None and stage in ("train", "val") and stage not in self._raw:
            source = self._read_split("train")
            held = set(holdout_rows(source.labels, self.val_fraction, self.seed))
            self._raw["train"] = source.subset("train", [i for i in range(len(source)) if i not in held])
            self._raw["val"] = source.subset("val", sorted(held))
        return super().raw_split(stage)

    def _from_file(self, path: str, stage: str) -> RawSplit:
        fmt = self.format if stage != "predict" else "auto"
        return load_file_split(path, stage, fmt, self.text_column, self.label_column if stage != "predict" else None)

    def _from_dataset(self, ds: Any, origin: str, stage: str) -> RawSplit:
        return _from_dataset(ds, self.splits[stage], origin, self.text_column, self.label_column, None)

    # --- vocabulary and labels (train split only) ------------------------------------------------------------
    def _tokenize(self, text: Any, raw: RawSplit, row: int) -> list[str]:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{raw.where(row)}: empty text in column {self.text_column!r}")
        tokens = self.tokenizer.tokenize(text.lower() if self.lowercase else text)
        if not tokens:
            raise ValueError(f"{raw.where(row)}: the text {text!r} gives no tokens")
        return tokens[:self.max_length] if self.max_length else tokens

    def prepare_vocab(self) -> None:
        """Build the tokenizer, the vocabulary and the label set from the training split (once)."""
        if self.vocab is not None:
            return
        raw = self.raw_split("train")
        self.tokenizer = build_tokenizer(self.tokenizer_spec)
        if not self.tokenizer.is_trained:
            self.tokenizer.train(raw.texts)
        token_lists = [self._tokenize(t, raw, i) for i, t in enumerate(raw.texts)]
        self._set_labels(raw)
        self.vocab = Vocab.build(token_lists, min_freq=self.min_freq, max_size=self.max_vocab_size,
                                 specials=SPECIALS)
        self._encoded["train"] = EncodedSplit([self.vocab.encode(t) for t in token_lists],
                                              self._label_ids(raw), list(raw.texts))

    def _set_labels(self, raw: RawSplit) -> None:
        names = self._given_label_names
        if names is None and raw.features is not None and hasattr(raw.features, "names"):
            names = list(raw.features.names)
        if names is None:
            values = {v for v in raw.labels if v is not None and v != ""}
            try:
                ordered = sorted(values)
            except TypeError:
                ordered = sorted(values, key=str)
            self._label_names = [str(v) for v in ordered]
            self._label_index = {v: i for i, v in enumerate(ordered)}
            if isinstance(next(iter(values), None), str):  # "0"/"1" strings: also accept the integers
                self._label_index.update({int(v): i for v, i in self._label_index.items() if _is_int(v)})
        else:
            if len(names) < 2:
                raise ValueError(f"need at least 2 label names, got {names}")
            self._label_names = [str(n) for n in names]
            self._label_index = _names_index(self._label_names)
        if len(self._label_names) < 2:
            raise ValueError(f"{raw.origin}: the training split has {len(self._label_names)} distinct label(s) "
                             f"{self._label_names}; a classifier needs at least 2")

    def _label_ids(self, raw: RawSplit) -> list[int]:
        ids = []
        for row, value in enumerate(raw.labels):
            key = value.strip() if isinstance(value, str) else value
            if isinstance(key, float) and key.is_integer():
                key = int(key)
            index = self._label_index.get(key) if _hashable(key) else None
            if index is None:
                raise ValueError(f"{raw.where(row)}: label {value!r} is not in the label set {self._label_names}")
            ids.append(index)
        return ids

    # --- public properties (the CLI links these into the model) -----------------------------------------------
    @property
    def label_names(self) -> list[str]:
        """Class names in index order."""
        self.prepare_vocab()
        return self._label_names

    @property
    def vocab_size(self) -> int:
        self.prepare_vocab()
        return len(self.vocab)

    @property
    def num_classes(self) -> int:
        self.prepare_vocab()
        return len(self.label_names)

    @property
    def pad_id(self) -> int:
        self.prepare_vocab()
        return self.vocab.pad_id

    def encode_texts(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of raw strings with this data module's tokenizer, vocab and ``max_length``."""
        self.prepare_vocab()
        raw = RawSplit("texts", "<texts>", list(texts), None)
        return [self.vocab.encode(self._tokenize(t, raw, i)) for i, t in enumerate(texts)]

    def encoded(self, stage: str) -> EncodedSplit:
        """The encoded split of ``stage`` (``"train"``, ``"val"``, ``"test"``, ``"predict"``), built once."""
        self.prepare_vocab()
        if stage not in self._encoded:
            raw = self.raw_split(stage)
            ids = [self.vocab.encode(self._tokenize(t, raw, i)) for i, t in enumerate(raw.texts)]
            labels = self._label_ids(raw) if raw.labels is not None else None
            self._encoded[stage] = EncodedSplit(ids, labels, list(raw.texts))
        return self._encoded[stage]

    @property
    def predict_texts(self) -> list[str]:
        """The raw texts of ``predict_file``, in file order."""
        return self.encoded("predict").texts

    def collate(self, data: EncodedSplit) -> PadCollator:
        """Pads a batch of ``data`` (with labels when the split has them)."""
        return PadCollator(self.vocab.pad_id, with_labels=data.labels is not None)

    # --- checkpointing: the vocabulary travels with the model --------------------------------------------------
    def preprocessing_state(self) -> dict[str, Any]:
        """Tokenizer config, vocab, label names and ``max_length``/``lowercase``: all a model needs for raw text."""
        self.prepare_vocab()
        return {"tokenizer": self.tokenizer.config(), "vocab": self.vocab.state_dict(),
                "label_names": list(self.label_names), "max_length": self.max_length, "lowercase": self.lowercase}

    def state_dict(self) -> dict[str, Any]:
        return self.preprocessing_state() if self.vocab is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Adopt a checkpoint's tokenizer, vocab and labels (so predictions use the training vocabulary)."""
        if not state:
            return
        self.tokenizer = build_tokenizer(state["tokenizer"])
        self.vocab = Vocab.from_state_dict(state["vocab"])
        names = list(state["label_names"])
        if names != self._label_names or self._label_index is None:
            self._label_index = _names_index(names)
        self._label_names = names
        self.max_length, self.lowercase = state.get("max_length"), state.get("lowercase", False)
        self._encoded = {}


def _names_index(names: Sequence[str]) -> dict[Any, int]:
    """Label value -> index for known class names: the name itself; for integer-like names (``"1"``, ``"5"``)
    also the integer; otherwise the position ``i`` and ``str(i)`` (integer labels indexing the names)."""
    index: dict[Any, int] = {n: i for i, n in enumerate(names)}
    if all(_is_int(n) for n in names):
        index.update({int(n): i for i, n in enumerate(names)})
    else:
        index.update({i: i for i in range(len(names))})
        index.update({str(i): i for i in range(len(names)) if str(i) not in index})
    return index


def _is_int(value: Any) -> bool:
    return isinstance(value, str) and value.lstrip("-").isdigit()


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
