"""Language-modelling data: text -> tokens -> ids -> B contiguous streams -> in-order [B, T] BPTT batches.

The token stream of a split (all its rows, in order) is cut into ``B`` contiguous rows ("batchify")::

    stream  t0 t1 t2 ... t(N-1) | tN ... t(2N-1) | ... | t((B-1)N) ... t(BN-1) | dropped remainder
    streams[b, j] = stream[b * N + j]                     shape [B, N]

and windows of ``T`` columns are served in order, ``inputs = streams[:, i:i+T]``, ``targets = streams[:, i+1:i+T+1]``,
so row ``b`` of batch ``k+1`` continues row ``b`` of batch ``k`` and a hidden state can be carried across batches.
Every token except the first of each row is a target exactly once per epoch.

Under DDP the stream is first cut into ``world_size`` equal contiguous shards, one per rank, and each shard is
batchified; ``len(stream) % (world_size * B)`` tokens at the end are dropped and nothing else. The loaders are plain
iterables (not ``DataLoader``s), so Lightning never wraps them in a ``DistributedSampler``; set
``use_distributed_sampler=False`` anyway for clarity.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from .presets import PRESETS, expected_local_files, resolve_preset
from .tokenizers import CharTokenizer, Tokenizer, build_tokenizer
from .vocab import Vocab

__all__ = [
    "LanguageModelingDataModule",
    "BPTTBatches",
    "batchify",
    "bptt_window_lengths",
    "load_vocab_and_tokenizer",
]

_SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
                  "dev": "validation", "test": "test"}
SPLITS = ("train", "validation", "test")


# ---------------------------------------------------------------------------------------------------------------
# pure helpers
# ---------------------------------------------------------------------------------------------------------------
def batchify(stream: Tensor, batch_size: int, rank: int = 0, world_size: int = 1) -> Tensor:
    """Cut a 1-D token stream into ``batch_size`` contiguous rows for ``rank`` of ``world_size``.

    With ``N = len(stream) // (world_size * batch_size)`` the rank's shard is
    ``stream[rank*B*N : (rank+1)*B*N]`` viewed as ``[B, N]`` (row ``b`` = ``shard[b*N:(b+1)*N]``).
    The last ``len(stream) % (world_size * batch_size)`` tokens are dropped.

    Raises:
        ValueError: a bad argument, or fewer than ``2 * world_size * batch_size`` tokens (each row needs an input
            and a target).
    """
    if not isinstance(stream, Tensor) or stream.dim() != 1:
        raise ValueError(f"stream must be a 1-D tensor, got {type(stream).__name__} "
                         f"with shape {tuple(getattr(stream, 'shape', ()))}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    n_rows = int(world_size) * int(batch_size)
    per_row = stream.numel() // n_rows
    if per_row < 2:
        raise ValueError(
            f"the token stream has {stream.numel()} tokens, fewer than one batch needs: at least "
            f"{2 * n_rows} tokens (2 per row x batch_size {batch_size} x world_size {world_size})"
        )
    shard = stream[rank * batch_size * per_row : (rank + 1) * batch_size * per_row]
    return shard.reshape(batch_size, per_row)


def bptt_window_lengths(n_targets: int, bptt: int, variable: bool = False, seed: int = 0, epoch: int = 0) -> list[int]:
    """Window lengths covering ``n_targets`` predictions exactly, ``K = ceil(n_targets / bptt)`` windows.

    Fixed: ``[bptt] * (K - 1) + [rest]``. Variable (AWD-LSTM, Merity et al. 2018): each window draws
    ``T ~ N(bptt, 5)`` with probability 0.95, else ``T ~ N(bptt / 2, 5)``, clipped below at 1; the draws are then
    rescaled (largest-remainder rounding, every window >= 1) so that they sum to ``n_targets`` with the same ``K``
    windows every epoch. A fixed count keeps Lightning's epoch length, progress bar and mid-epoch resume exact.
    The draws depend only on ``(seed, epoch)``.
    """
    n_targets, bptt = int(n_targets), int(bptt)
    if bptt < 1:
        raise ValueError(f"bptt must be >= 1, got {bptt}")
    if n_targets < 1:
        return []
    k = math.ceil(n_targets / bptt)
    if not variable:
        return [bptt] * (k - 1) + [n_targets - bptt * (k - 1)]
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    half = torch.rand(k, generator=gen) >= 0.95
    mean = torch.where(half, torch.full((k,), bptt / 2.0), torch.full((k,), float(bptt)))
    raw = (mean + 5.0 * torch.randn(k, generator=gen, dtype=torch.float64).float()).clamp_min(1.0).double()
    cum = torch.round(torch.cumsum(raw, 0) / raw.sum() * n_targets).long().tolist()
    bounds: list[int] = []
    prev = 0
    for i, b in enumerate(cum):
        hi = n_targets - (k - 1 - i)
        b = n_targets if i == k - 1 else min(max(b, prev + 1), hi)
        bounds.append(b)
        prev = b
    return [b - a for a, b in zip([0] + bounds[:-1], bounds)]


class BPTTBatches:
    """In-order BPTT batches over ``streams`` [B, N]: yields ``(inputs [B, T], targets [B, T])``, batch first.

    It is its own data loader: ``len()`` is exact, and ``state_dict()`` / ``load_state_dict()`` make it resumable
    mid-epoch (Lightning 2.x saves the state of a stateful train loader in the checkpoint under
    ``loops.fit_loop.state_dict.combined_loader`` and restores it before the first ``iter()``).

    Each fresh ``iter()`` starts the next epoch (0, 1, ...); the epoch seeds the variable-BPTT draws. After
    ``load_state_dict``, the next ``iter()`` continues the saved epoch at the first batch not yet served.

    Args:
        streams: token ids, shape [B, N] (see :func:`batchify`).
        bptt: target window length.
        variable: AWD-LSTM variable-length windows (see :func:`bptt_window_lengths`).
        seed: seed of the variable-length draws.
    """

    def __init__(self, streams: Tensor, bptt: int, variable: bool = False, seed: int = 0) -> None:
        if not isinstance(streams, Tensor) or streams.dim() != 2:
            raise ValueError(f"streams must be a [B, N] tensor, got shape {tuple(getattr(streams, 'shape', ()))}")
        if int(bptt) < 1:
            raise ValueError(f"bptt must be >= 1, got {bptt}")
        self.streams = streams
        self.bptt = int(bptt)
        self.variable = bool(variable)
        self.seed = int(seed)
        self.epoch = 0  # epoch of the current (or last) iteration
        self.batch = 0  # batches served in that epoch
        self._next_epoch = 0
        self._resume: tuple[int, int] | None = None

    @property
    def batch_size(self) -> int:
        return self.streams.shape[0]

    @property
    def num_targets(self) -> int:
        """Predictions per epoch: ``B * (N - 1)``."""
        return self.streams.shape[0] * max(self.streams.shape[1] - 1, 0)

    def __len__(self) -> int:
        return math.ceil(max(self.streams.shape[1] - 1, 0) / self.bptt)

    def window_lengths(self, epoch: int) -> list[int]:
        return bptt_window_lengths(self.streams.shape[1] - 1, self.bptt, self.variable, self.seed, epoch)

    def set_epoch(self, epoch: int) -> None:
        """Make the next fresh ``iter()`` run epoch ``epoch`` (ignored while a loaded mid-epoch state is pending)."""
        self._next_epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self._generate()

    def _generate(self) -> Iterator[tuple[Tensor, Tensor]]:
        # The epoch is claimed on the first next(), not in iter(): Lightning calls iter() once just to check that
        # the loader is iterable, and that must not consume an epoch.
        if self._resume is not None:
            epoch, start = self._resume
            self._resume = None
        else:
            epoch, start = self._next_epoch, 0
        self._next_epoch = epoch + 1
        self.epoch, self.batch = epoch, start
        lengths = self.window_lengths(epoch)
        pos = sum(lengths[:start])
        for k in range(start, len(lengths)):
            t = lengths[k]
            x = self.streams[:, pos : pos + t]
            y = self.streams[:, pos + 1 : pos + 1 + t]
            pos += t
            self.batch = k + 1
            yield x, y

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batch": self.batch, "next_epoch": self._next_epoch, "bptt": self.bptt,
                "variable": self.variable, "seed": self.seed, "shape": list(self.streams.shape)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue where ``state`` was taken. Raises ValueError if the stream layout or BPTT settings differ."""
        mine = {"bptt": self.bptt, "variable": self.variable, "seed": self.seed, "shape": list(self.streams.shape)}
        theirs = {k: (list(state[k]) if k == "shape" else state[k]) for k in mine if k in state}
        if theirs != {k: mine[k] for k in theirs}:
            raise ValueError(
                f"cannot resume the LM batches: the saved layout {theirs} differs from the current one {mine} "
                "(same data, tokenizer, batch_size, world_size, bptt, variable_bptt and seed are needed)"
            )
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if 0 < batch < len(self):
            self._resume = (epoch, batch)
            self._next_epoch = epoch
        else:  # nothing served yet, or the epoch was finished: start a fresh epoch
            self._resume = None
            self._next_epoch = epoch + 1 if batch >= len(self) and batch > 0 else epoch
        self.epoch, self.batch = epoch, batch


# ---------------------------------------------------------------------------------------------------------------
# the data module
# ---------------------------------------------------------------------------------------------------------------
class LanguageModelingDataModule(L.LightningDataModule):
    """Word-, char- or BPE-level language-modelling data from the hub, local files or a preset.

    Give exactly one source: ``preset``, or ``path`` (a ``datasets.load_dataset`` path, with ``name``) and/or
    ``data_files`` (local files; alone they are read with the ``"text"`` builder). Splits are ``train``
    (required), ``validation`` (``valid``/``val``/``dev`` accepted) and ``test``.

    Args:
        path, name: ``load_dataset(path, name)``, e.g. ``"wikitext", "wikitext-2-v1"``.
        data_files: a file, or a dict split -> file(s). Read line by line; the char and BPE tokenizers keep the line
            breaks (``keep_linebreaks=True``), the word tokenizer appends its ``eos`` to each line instead.
        preset: ``"ptb" | "wikitext2" | "tinyshakespeare" | "tinyshakespeare-bundled"`` (see ``data/presets.py``).
        data_dir: where presets look for their files (default ``$RK_DATA_DIR``, else ``../shared/data``).
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
        super().__init__()
        if preset is not None and (path is not None or data_files is not None):
            raise ValueError("give either preset or path/data_files, not both")
        if preset is None and path is None and data_files is None:
            raise ValueError("give a data source: preset=..., path=... (hub dataset) or data_files=... (local files)")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        for arg, val in (("batch_size", batch_size), ("bptt", bptt), ("min_freq", min_freq)):
            if int(val) < 1:
                raise ValueError(f"{arg} must be >= 1, got {val}")
        if eval_batch_size is not None and int(eval_batch_size) < 1:
            raise ValueError(f"eval_batch_size must be >= 1, got {eval_batch_size}")
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
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size) if eval_batch_size is not None else self.batch_size
        self.bptt = int(bptt)
        self.variable_bptt = bool(variable_bptt)
        self.num_workers = int(num_workers)
        self.cache_dir = cache_dir
        self.split_fractions = split_fractions
        self.seed = int(seed)
        self._tokenizer: Tokenizer = build_tokenizer(tokenizer, **(tokenizer_kwargs or {}))
        self._vocab: Vocab | None = None
        self._streams: dict[str, Tensor] | None = None  # 1-D id stream per split (all ranks)
        self._sources: dict[str, str] = {}  # split -> human-readable origin, for error messages
        self._loaders: dict[str, BPTTBatches] = {}
        self._rank_world: tuple[int, int] | None = None

    # -- public properties ----------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    @property
    def vocab(self) -> Vocab:
        """The vocab (built on the training split on first access)."""
        if self._vocab is None:
            self._prepare_corpus()
        assert self._vocab is not None
        return self._vocab

    @property
    def vocab_size(self) -> int:
        """``len(vocab)``; builds the vocab lazily so LightningCLI can link it at instantiation."""
        return len(self.vocab)

    @property
    def char_level(self) -> bool:
        """True for the character tokenizer (the task then reports bits per character)."""
        return isinstance(self._tokenizer, CharTokenizer)

    def token_stream(self, split: str = "train") -> Tensor:
        """The whole 1-D id stream of a split (before batching and sharding)."""
        split = _SPLIT_ALIASES.get(split, split)
        streams = self._prepare_corpus()
        if split not in streams:
            raise KeyError(f"split {split!r} is not available; have {sorted(streams)}")
        return streams[split]

    def encode(self, text: str) -> Tensor:
        """Tokenize and map ``text`` to a 1-D LongTensor of ids."""
        return torch.tensor(self.vocab.encode(self._tokenizer.tokenize(text)), dtype=torch.long)

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """Map ids back to text."""
        return self._tokenizer.detokenize(self.vocab.decode(ids))

    # -- Lightning hooks ------------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Load (download, cache) the raw dataset once; the heavy work happens in :meth:`setup`."""
        self._load_raw()

    def setup(self, stage: str | None = None) -> None:
        streams = self._prepare_corpus()
        rank, world = self._rank_and_world()
        self._rank_world = (rank, world)
        self._loaders = {}
        for split, stream in streams.items():
            bsz = self.batch_size if split == "train" else self.eval_batch_size
            try:
                rows = batchify(stream, bsz, rank, world)
            except ValueError as err:
                raise ValueError(f"{split} split of {self._sources.get(split, 'the corpus')}: {err}") from None
            self._loaders[split] = BPTTBatches(rows, self.bptt, variable=self.variable_bptt and split == "train",
                                               seed=self.seed)

    def train_dataloader(self) -> BPTTBatches:
        return self._loader("train")

    def val_dataloader(self) -> BPTTBatches | list:
        return self._loader("validation", required=False)

    def test_dataloader(self) -> BPTTBatches | list:
        return self._loader("test", required=False)

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
        if self._vocab is not None:
            if self._vocab.tokens != ck_vocab.tokens:
                diff = next((i for i, (a, b) in enumerate(zip(self._vocab.tokens, ck_vocab.tokens)) if a != b),
                            min(len(self._vocab), len(ck_vocab)))
                raise ValueError(
                    f"vocab mismatch: the checkpoint's vocab has {len(ck_vocab)} tokens, this data gives "
                    f"{len(self._vocab)}; first difference at id {diff}. Use the same data, tokenizer, min_freq and "
                    "max_vocab_size as the run that wrote the checkpoint."
                )
        else:
            self._vocab = ck_vocab
        if not self._tokenizer.is_trained:
            self._tokenizer = ck_tok

    # -- internals ------------------------------------------------------------------------------------------------
    def _loader(self, split: str, required: bool = True) -> BPTTBatches | list:
        if not self._loaders:
            self.setup()
        if split not in self._loaders:
            if required:
                raise ValueError(f"the data has no {split} split (available: {sorted(self._loaders)})")
            return []
        return self._loaders[split]

    def _rank_and_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            return int(trainer.global_rank), int(trainer.world_size)
        return 0, 1

    def _load_raw(self):
        """Return a ``DatasetDict`` with splits named train/validation/test and a ``text`` column."""
        from datasets import Dataset, DatasetDict, load_dataset

        keep_lb = self._tokenizer.keeps_linebreaks
        fractions = self.split_fractions
        text_column = self.text_column
        local = True
        if self.preset is not None:
            preset, files = resolve_preset(self.preset, self.data_dir)
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
            try:
                raw = load_dataset(builder, name, data_files=data_files, cache_dir=self.cache_dir, **kwargs)
            except FileNotFoundError as err:
                raise FileNotFoundError(f"could not load {self._sources or builder}: {err}") from err
            if builder != "text":
                local = False
        raw = DatasetDict({_SPLIT_ALIASES[k]: v for k, v in raw.items() if k in _SPLIT_ALIASES})
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

    def _prepare_corpus(self) -> dict[str, Tensor]:
        if self._streams is not None:
            return self._streams
        raw = self._load_raw()
        train = raw["train"]
        if train.num_rows == 0 or not any(t.strip() for t in train["text"]):
            raise ValueError(f"empty corpus: the train split ({self._sources.get('train', 'train')}) has no text")
        tok = self._tokenizer
        if not tok.is_trained:
            tok.train(iter(train["text"]))
        num_proc = self.num_workers if self.num_workers > 1 else None

        def tokenize(batch):
            return {"tokens": [tok.tokenize(t) for t in batch["text"]]}

        # explicit fingerprints: cheap to compute (hashing a large vocab through dill is slow) and they name exactly
        # what the cached result depends on
        tok_key = json.dumps(tok.config(), sort_keys=True)
        tokenized = {s: ds.map(tokenize, batched=True, remove_columns=["text"], num_proc=num_proc, desc="tokenize",
                               new_fingerprint=_fingerprint(ds, "rk-tokenize", tok_key))
                     for s, ds in raw.items()}
        if self._vocab is None:
            self._vocab = Vocab.from_counts(_token_counts(tokenized["train"]), min_freq=self.min_freq,
                                            max_size=self.max_vocab_size, specials=("<unk>",))
        vocab = self._vocab

        def encode(batch):
            return {"ids": [vocab.encode(t) for t in batch["tokens"]]}

        vocab_key = json.dumps([vocab.tokens, vocab.unk_token])
        encoded = {s: ds.map(encode, batched=True, remove_columns=["tokens"], num_proc=num_proc, desc="encode",
                             new_fingerprint=_fingerprint(ds, "rk-encode", vocab_key))
                   for s, ds in tokenized.items()}
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
        if key not in _SPLIT_ALIASES:
            raise ValueError(f"unknown split {key!r} in data_files; use train, validation (valid/val/dev) or test")
        split = _SPLIT_ALIASES[key]
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
