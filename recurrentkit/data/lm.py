"""Language-modelling data from text files, hub datasets or presets: text -> tokens -> ids -> BPTT batches.

Rows are read with ``datasets.load_dataset``, tokenized with ``Dataset.map``, mapped to ids with a vocabulary built
on the training split, and concatenated into one 1-D id stream per split; the streams are then cut into rank-aware
contiguous rows and served as in-order ``[B, T]`` windows by :class:`~recurrentkit.data.lm_stream.TokenStreamDataModule`
(see :mod:`recurrentkit.data.lm_stream` for the layout).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .lm_stream import SPLIT_ALIASES, SPLITS, BPTTBatches, TokenStreamDataModule, batchify, bptt_window_lengths
from .presets import expected_local_files, get_preset, resolve_preset
from .tokenizers import Tokenizer, build_tokenizer
from .vocab import Vocab

__all__ = [
    "LanguageModelingDataModule",
    "BPTTBatches",
    "batchify",
    "bptt_window_lengths",
    "load_vocab_and_tokenizer",
]

#: splits with fewer rows are tokenized without a progress bar
PROGRESS_MIN_ROWS = 100_000


class LanguageModelingDataModule(TokenStreamDataModule):
    """Word-, char- or BPE-level language-modelling data from the hub, local files or a preset.

    Give exactly one source: ``preset``, or ``path`` (a ``datasets.load_dataset`` path, with ``name``) and/or
    ``data_files`` (local files; alone they are read with the ``"text"`` builder). Splits are ``train``
    (required), ``validation`` (``valid``/``val``/``dev`` accepted) and ``test``.

    Args:
        path, name: ``load_dataset(path, name)``, e.g. ``"wikitext", "wikitext-2-v1"``.
        data_files: a file, or a dict split -> file(s). Read line by line; the char and BPE tokenizers keep the line
            breaks (``keep_linebreaks=True``), the word tokenizer appends its ``eos`` to each line instead.
        preset: ``"ptb" | "wikitext2" | "tinyshakespeare" | "tinyshakespeare-bundled"`` (see ``data/presets.py``).
        data_dir: where presets look for their files (default: :func:`~recurrentkit.data.presets.default_data_dir`,
            i.e. ``$RK_DATA_DIR``, else ``../shared/data`` when it exists).
        text_column: column holding the text (hub datasets).
        tokenizer, tokenizer_kwargs: ``"word" | "char" | "bpe"`` and its kwargs (see ``build_tokenizer``).
        min_freq, max_vocab_size: vocab pruning, on the training split only (``max_vocab_size`` counts ``<unk>``).
        batch_size, eval_batch_size: rows B of the train / validation+test streams (eval defaults to batch_size).
        bptt, variable_bptt: window length; AWD-LSTM variable windows for training.
        num_workers: processes for the tokenization ``Dataset.map`` (``num_proc``); batches are tensor slices,
            served in the main process.
        cache_dir: ``datasets`` cache directory.
        split_fractions: when the source has only a train split, cut its text by characters into
            train/validation/test with these fractions (the Tiny Shakespeare presets use (0.9, 0.05, 0.05)).
        seed: seed of the variable-BPTT draws.
    """

    vocab_settings = "data, tokenizer, min_freq and max_vocab_size"

    def __init__(
        self,
        path: str | None = None,
        name: str | None = None,
        data_files: dict[str, str] | str | None = None,
        preset: str | None = None,
        data_dir: str | None = None,
        text_column: str = "text",
        tokenizer: str = "word",
        tokenizer_kwargs: dict | None = None,
        min_freq: int = 1,
        max_vocab_size: int | None = None,
        batch_size: int = 20,
        eval_batch_size: int | None = None,
        bptt: int = 35,
        variable_bptt: bool = False,
        num_workers: int = 0,
        cache_dir: str | None = None,
        split_fractions: tuple[float, float, float] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, bptt, variable_bptt, seed)
        if preset is not None and (path is not None or data_files is not None):
            raise ValueError("give either preset or path/data_files, not both")
        if preset is None and path is None and data_files is None:
            raise ValueError("give a data source: preset=..., path=... (hub dataset) or data_files=... (local files)")
        if preset is not None:
            get_preset(preset, kind="lm")  # an unknown name fails now, listing the known ones
        if int(min_freq) < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if split_fractions is not None:
            split_fractions = tuple(float(f) for f in split_fractions)
            if len(split_fractions) != 3 or any(f < 0 for f in split_fractions) or split_fractions[0] <= 0 \
                    or abs(sum(split_fractions) - 1.0) > 1e-6:
                raise ValueError(f"split_fractions must be 3 non-negative numbers summing to 1, got {split_fractions}")
        self.save_hyperparameters()
        self.path, self.name, self.preset = path, name, preset
        self.data_files = data_files
        self.data_dir = data_dir
        self.text_column = text_column
        self.min_freq = int(min_freq)
        self.max_vocab_size = max_vocab_size
        self.num_workers = int(num_workers)
        self.cache_dir = cache_dir
        self.split_fractions = split_fractions
        self._tokenizer: Tokenizer = build_tokenizer(tokenizer, **(tokenizer_kwargs or {}))
        self._streams: dict[str, Tensor] | None = None  # 1-D id stream per split (all ranks)
        self._sources: dict[str, str] = {}  # split -> human-readable origin, for error messages

    # -- Lightning hooks ------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Load (download, cache) the raw dataset once; the heavy work happens in :meth:`setup`."""
        self._load_raw()

    def state_dict(self) -> dict[str, Any]:
        """Tokenizer config and vocab, so a checkpoint knows how its ids were made."""
        return {"tokenizer": self._tokenizer.config(), "vocab": self.vocab.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt the checkpoint's tokenizer and vocab, or check them against the ones already built.

        Raises:
            ValueError: the checkpoint was made with another tokenizer or vocab than this data gives.
        """
        if not isinstance(state_dict, Mapping) or "tokenizer" not in state_dict or "vocab" not in state_dict:
            raise ValueError("not a LanguageModelingDataModule state: expected keys 'tokenizer' and 'vocab'")
        ck_tok = build_tokenizer(dict(state_dict["tokenizer"]))
        ck_vocab = Vocab.from_state_dict(state_dict["vocab"])
        mine = self._tokenizer.config()
        theirs = ck_tok.config()
        comparable = set(mine) & set(theirs) if not self._tokenizer.is_trained else set(mine) | set(theirs)
        if {k: mine.get(k) for k in comparable} != {k: theirs.get(k) for k in comparable}:
            def short(c):
                return {k: v for k, v in c.items() if k != "model"}
            raise ValueError(
                f"tokenizer mismatch: the checkpoint used {short(theirs)}"
                f"{' (trained BPE merges differ)' if short(theirs) == short(mine) else ''}, "
                f"this data module is configured with {short(mine)}"
            )
        self._adopt_vocab(ck_vocab)
        if not self._tokenizer.is_trained:
            self._tokenizer = ck_tok

    # -- internals ------------------------------------------------------------------------------------------------
    def _source(self, split: str) -> str:
        return self._sources.get(split, "the corpus")

    def _load_raw(self):
        """Return a ``DatasetDict`` with splits named train/validation/test and a ``text`` column."""
        from datasets import Dataset, DatasetDict, load_dataset

        keep_lb = self._tokenizer.keeps_linebreaks
        fractions = self.split_fractions
        text_column = self.text_column
        local = True
        if self.preset is not None:
            preset, files = resolve_preset(self.preset, self.data_dir, kind="lm")
            fractions = fractions or preset.split_fractions
            if files is None:
                if preset.hub_path is None:
                    raise FileNotFoundError(f"preset {self.preset!r}: files not found: "
                                            f"{expected_local_files(self.preset, self.data_dir)}")
                try:
                    raw = load_dataset(preset.hub_path, preset.hub_name, cache_dir=self.cache_dir)
                except Exception as err:  # offline, unknown, ...
                    raise FileNotFoundError(
                        f"preset {self.preset!r}: local files not found "
                        f"({', '.join(expected_local_files(self.preset, self.data_dir))}; set data_dir or "
                        f"RK_DATA_DIR) and the hub dataset {preset.hub_path!r}"
                        f"{'/' + preset.hub_name if preset.hub_name else ''} could not be loaded: "
                        f"{type(err).__name__}: {err}"
                    ) from err
                text_column, local = preset.hub_text_column, False
                self._sources = {s: f"hub dataset {preset.hub_path}" for s in SPLITS}
            else:
                data_files, builder, name = files, "text", None
        else:
            data_files = self.data_files
            builder, name = (self.path or "text"), self.name
            local = self.path is None
        if self.preset is None or local:
            if data_files is not None:
                data_files = _normalize_data_files(data_files)
                self._sources = {s: ", ".join(f) if isinstance(f, list) else f for s, f in data_files.items()}
            else:
                self._sources = {s: f"dataset {builder}{'/' + name if name else ''}" for s in SPLITS}
            kwargs: dict[str, Any] = {}
            if builder == "text":
                only_train = data_files is not None and set(data_files) == {"train"}
                by_document = fractions is not None and only_train
                kwargs = {"sample_by": "document" if by_document else "line", "keep_linebreaks": keep_lb}
                text_column = "text"
            if builder == "text" and data_files is not None:
                from .checks import check_local_files

                check_local_files(data_files)  # a bad byte is named by file, line and column
            try:
                raw = load_dataset(builder, name, data_files=data_files, cache_dir=self.cache_dir, **kwargs)
            except FileNotFoundError as err:
                raise FileNotFoundError(f"could not load {self._sources or builder}: {err}") from err
            if builder != "text":
                local = False
        raw = DatasetDict({SPLIT_ALIASES[k]: v for k, v in raw.items() if k in SPLIT_ALIASES})
        if "train" not in raw:
            raise ValueError(f"the data has no train split (splits: {sorted(raw)})")
        for split, ds in raw.items():
            if text_column not in ds.column_names:
                raise ValueError(f"{split} split has no column {text_column!r} (columns: {ds.column_names})")
            if text_column != "text":
                ds = ds.rename_column(text_column, "text")
            raw[split] = ds.select_columns(["text"])
        if not local and keep_lb:
            # hub rows are lines: make sure each ends with its line break so char/BPE streams keep them
            raw = raw.map(lambda b: {"text": [t if t.endswith("\n") else t + "\n" for t in b["text"]]},
                          batched=True, desc="line breaks")
        if fractions is not None and set(raw) == {"train"}:
            rows = raw["train"]["text"]
            text = "".join(rows) if local or keep_lb else "\n".join(rows)
            n = len(text)
            a, b = int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)
            pieces = {"train": text[:a], "validation": text[a:b], "test": text[b:]}
            src = self._sources.get("train", "the corpus")
            self._sources = {s: f"{src} [{s} part of the {fractions} character split]" for s in pieces}
            raw = DatasetDict({s: Dataset.from_dict({"text": [p]}) for s, p in pieces.items() if p})
        return raw

    def _load_streams(self) -> dict[str, Tensor]:
        if self._streams is not None:
            return self._streams
        raw = self._load_raw()
        train = raw["train"]
        if train.num_rows == 0 or not any(t.strip() for t in train["text"]):
            raise ValueError(f"empty corpus: the train split ({self._sources.get('train', 'train')}) has no text")
        tok = self._tokenizer
        if not tok.is_trained:
            tok.train(iter(train["text"]))

        def tokenize(batch):
            return {"tokens": [tok.tokenize(t) for t in batch["text"]]}

        tok_key = json.dumps(tok.config(), sort_keys=True)
        tokenized = {s: self._map(ds, tokenize, "text", "tokenize", tok_key) for s, ds in raw.items()}
        if self._vocab is None:
            self._vocab = Vocab.from_counts(_token_counts(tokenized["train"]), min_freq=self.min_freq,
                                            max_size=self.max_vocab_size, specials=("<unk>",))
        vocab = self._vocab

        def encode(batch):
            return {"ids": [vocab.encode(t) for t in batch["tokens"]]}

        vocab_key = json.dumps([vocab.tokens, vocab.unk_token])
        encoded = {s: self._map(ds, encode, "tokens", "encode", vocab_key) for s, ds in tokenized.items()}
        streams: dict[str, Tensor] = {}
        for split in SPLITS:
            if split not in encoded:
                continue
            ids = _flatten_ids(encoded[split])
            if ids.numel() == 0:
                raise ValueError(f"empty corpus: the {split} split ({self._sources.get(split, split)}) has no tokens")
            streams[split] = ids
        self._streams = streams
        return streams

    def _map(self, ds, fn, column: str, desc: str, key: str):
        """``ds.map(fn)`` replacing ``column``, cached under an explicit fingerprint (cheap to compute: hashing a
        large vocab through dill is slow, and it names exactly what the result depends on). Its progress bar shows
        only for splits of at least ``PROGRESS_MIN_ROWS`` rows: on a small corpus it is noise."""
        from datasets import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

        hide = ds.num_rows < PROGRESS_MIN_ROWS and not are_progress_bars_disabled()
        if hide:
            disable_progress_bars()
        try:
            return ds.map(fn, batched=True, remove_columns=[column], desc=desc,
                          num_proc=self.num_workers if self.num_workers > 1 else None,
                          new_fingerprint=_fingerprint(ds, f"rk-{desc}", key))
        finally:
            if hide:
                enable_progress_bars()


def _fingerprint(ds, *parts: str) -> str:
    """A ``datasets`` fingerprint for a transform of ``ds`` determined by ``parts``."""
    h = hashlib.sha256(str(getattr(ds, "_fingerprint", "")).encode())
    for p in parts:
        h.update(b"\0" + p.encode())
    return h.hexdigest()[:16]


def _token_counts(ds) -> dict[str, int]:
    """Token frequencies of a ``tokens`` list column, counted by Arrow."""
    import pyarrow.compute as pc

    col = ds.with_format("arrow")[:].column("tokens")
    counts = pc.value_counts(pc.list_flatten(col))
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))


def _flatten_ids(ds) -> Tensor:
    """Concatenate a ``datasets`` column of id lists into one LongTensor (via Arrow, no Python loop)."""
    import numpy as np
    import pyarrow.compute as pc

    table = ds.with_format("arrow")[:]
    col = table.column("ids")
    flat = pc.list_flatten(col)
    arr = flat.to_numpy() if hasattr(flat, "to_numpy") else np.asarray(flat)
    return torch.from_numpy(np.array(arr, dtype=np.int64, copy=True))


def _normalize_data_files(data_files) -> dict[str, Any]:
    if isinstance(data_files, (str, os.PathLike)):
        data_files = {"train": data_files}
    elif isinstance(data_files, (list, tuple)):
        data_files = {"train": list(data_files)}
    if not isinstance(data_files, Mapping):
        raise TypeError(f"data_files must be a path, a list of paths or a dict split -> path(s), got {data_files!r}")
    out: dict[str, Any] = {}
    for key, files in data_files.items():
        if key not in SPLIT_ALIASES:
            raise ValueError(f"unknown split {key!r} in data_files; use train, validation (valid/val/dev) or test")
        split = SPLIT_ALIASES[key]
        files_list = [files] if isinstance(files, (str, os.PathLike)) else list(files)
        for f in files_list:
            f = os.fspath(f)
            if not any(c in f for c in "*?[") and "://" not in f and not Path(f).is_file():
                raise FileNotFoundError(f"{split} data file not found: {f}")
            if Path(f).is_file() and Path(f).stat().st_size == 0:
                raise ValueError(f"empty corpus: the {split} data file {f} is empty")
        files_list = [os.fspath(f) for f in files_list]
        out[split] = files_list[0] if len(files_list) == 1 else files_list
    return out


def load_vocab_and_tokenizer(checkpoint: str | os.PathLike | Mapping[str, Any]) -> tuple[Vocab, Tokenizer]:
    """The vocab and tokenizer stored by :class:`LanguageModelingDataModule` in a Lightning checkpoint.

    ``checkpoint`` is a path or an already loaded checkpoint dict (Lightning stores the data module state under its
    class name, ``"LanguageModelingDataModule"``).
    """
    if not isinstance(checkpoint, Mapping):
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint not found: {os.fspath(checkpoint)}")
        checkpoint = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = checkpoint.get(LanguageModelingDataModule.__qualname__)
    if state is None:
        raise KeyError(f"the checkpoint has no {LanguageModelingDataModule.__qualname__!r} entry "
                       "(was it trained with this data module?)")
    return Vocab.from_state_dict(state["vocab"]), build_tokenizer(dict(state["tokenizer"]))
