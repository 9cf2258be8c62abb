"""One Billion Word benchmark (Chelba et al. 2013) as memory-mapped id streams.

The release layout under ``root``::

    training-monolingual.tokenized.shuffled/news.en-000NN-of-00100      train shards NN = 01..99
    heldout-monolingual.tokenized.shuffled/news.en.heldout-000NN-of-00050   heldout shards NN = 00..49

Heldout shard ``00000`` is the standard test set (306,688 sentences). The other heldout shards are never used for
the published numbers; ``validation_shards`` (default ``[1]``) picks some of them as a validation split.

Vocabulary: every training word seen at least ``min_count`` times (3 gives the standard 793,471-word vocabulary of
the release, counting ``<S>``, ``</S>`` and ``<UNK>``), ids sorted by decreasing count after the specials, so the
adaptive and sampled softmax see frequent words first. Every line becomes ``w_1 ... w_n </S>``: the stream carries
the hidden state across sentences (as Jozefowicz et al. 2016) and ``</S>`` is predicted, ``<S>`` never appears in
the stream (it would be a free prediction after every ``</S>``) unless ``add_bos=True``.

The text is read shard by shard twice (count, then encode) and the ids are appended to one ``uint32`` file per split
in ``cache_dir``, with the vocab as JSON beside it; later runs (and the other DDP ranks, which wait on a file lock)
memory-map those files, so the 0.8B training tokens never sit in RAM as Python objects. Sharding and batching are
those of every language-model data module (:class:`~recurrentkit.data.lm_stream.TokenStreamDataModule`): the
contiguous ``[B, T]`` windows of :class:`~recurrentkit.data.lm_stream.BPTTBatches` (served as ``int64``, one window
copied out of the map at a time), each rank reading its own contiguous shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .lm_stream import BPTTBatches, TokenStreamDataModule
from .tokenizers import WordTokenizer
from .vocab import Vocab

__all__ = ["OneBillionWordDataModule", "LM1BBatches", "lm1b_files", "TRAIN_DIR", "HELDOUT_DIR"]

TRAIN_DIR = "training-monolingual.tokenized.shuffled"
HELDOUT_DIR = "heldout-monolingual.tokenized.shuffled"
BOS, EOS, UNK = "<S>", "</S>", "<UNK>"
SPECIALS = (BOS, EOS, UNK)
_TRAIN_RE = re.compile(r"news\.en-(\d{5})-of-00100$")
_CACHE_VERSION = 1


def _train_name(i: int) -> str:
    return f"news.en-{i:05d}-of-00100"


def _heldout_name(i: int) -> str:
    return f"news.en.heldout-{i:05d}-of-00050"


def lm1b_files(root: str | os.PathLike, train_shards: Sequence[int] | None = None,
               validation_shards: Sequence[int] = (1,), test_shards: Sequence[int] = (0,)) -> dict[str, list[Path]]:
    """The shard files of each split under ``root`` (release layout), checked to exist.

    ``train_shards=None`` takes every ``news.en-NNNNN-of-00100`` file present (the release has 01..99).

    Raises:
        FileNotFoundError: ``root`` or one of its two folders is missing, or a requested shard is absent; the
            message shows the layout expected.
    """
    root = Path(root)
    layout = (f"expected the One Billion Word release layout: {root}/{TRAIN_DIR}/news.en-000NN-of-00100 (NN=01..99) "
              f"and {root}/{HELDOUT_DIR}/news.en.heldout-000NN-of-00050 (00000 = test)")
    if not root.is_dir():
        raise FileNotFoundError(f"One Billion Word root not found: {root} ({layout})")
    train_dir, heldout_dir = root / TRAIN_DIR, root / HELDOUT_DIR
    for folder in (train_dir, heldout_dir):
        if not folder.is_dir():
            raise FileNotFoundError(f"missing folder {folder} ({layout})")
    if train_shards is None:
        train = sorted(p for p in train_dir.iterdir() if _TRAIN_RE.fullmatch(p.name))
        if not train:
            raise FileNotFoundError(f"no training shards news.en-NNNNN-of-00100 in {train_dir} ({layout})")
    else:
        train = [train_dir / _train_name(int(i)) for i in train_shards]
    files = {"train": train,
             "validation": [heldout_dir / _heldout_name(int(i)) for i in validation_shards],
             "test": [heldout_dir / _heldout_name(int(i)) for i in test_shards]}
    test_set = {int(i) for i in test_shards}
    if test_set & {int(i) for i in validation_shards}:
        raise ValueError(f"validation_shards {list(validation_shards)} overlap test_shards {sorted(test_set)}")
    for split, paths in files.items():
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"{split} shard not found: {p} ({layout})")
    return {s: p for s, p in files.items() if p}


def _lines(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield line.split()


LM1BBatches = BPTTBatches  # the old name: BPTTBatches now serves int64 windows of any stream itself


class OneBillionWordDataModule(TokenStreamDataModule):
    """The One Billion Word benchmark from its release folder, as contiguous ``[B, T]`` BPTT batches.

    Args:
        root: the folder holding ``training-monolingual.tokenized.shuffled/`` and
            ``heldout-monolingual.tokenized.shuffled/``.
        min_count: keep training words seen at least this often (3: the standard 793,471-word vocabulary).
        max_vocab_size: optionally keep only the most frequent words (specials included).
        train_shards: training shard numbers (1..99); ``None``: every shard present.
        validation_shards: heldout shard numbers used for validation (default ``[1]``; ``[]`` for none).
        test_shards: heldout shard numbers used for test (default ``[0]``, the standard test set).
        add_bos: also put ``<S>`` at the start of every sentence (then it is predicted too; off by default).
        batch_size, eval_batch_size: rows per rank of the train / validation+test streams.
        bptt: window length T.
        variable_bptt: AWD-LSTM variable-length windows for training.
        cache_dir: where the vocab JSON and ``uint32`` id files go (default ``<root>/.recurrentkit-cache``).
        seed: seed of the variable-BPTT draws.

    ``vocab_size`` builds (or loads) the cache on first access, so LightningCLI can link it into the model.
    """

    vocab_settings = "root, train_shards, min_count and max_vocab_size"

    def __init__(self, root: str = "data/1-billion-word-language-modeling-benchmark-r13output", min_count: int = 3,
                 max_vocab_size: int | None = None, train_shards: list[int] | None = None,
                 validation_shards: list[int] | None = None, test_shards: list[int] | None = None,
                 add_bos: bool = False, batch_size: int = 128, eval_batch_size: int | None = None, bptt: int = 20,
                 variable_bptt: bool = False, cache_dir: str | None = None, seed: int = 0) -> None:
        super().__init__(batch_size, eval_batch_size, bptt, variable_bptt, seed)
        if int(min_count) < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_vocab_size is not None and int(max_vocab_size) <= len(SPECIALS):
            raise ValueError(f"max_vocab_size must exceed the {len(SPECIALS)} specials, got {max_vocab_size}")
        self.save_hyperparameters()
        self.root = Path(root)
        self.min_count = int(min_count)
        self.max_vocab_size = None if max_vocab_size is None else int(max_vocab_size)
        self.train_shards = None if train_shards is None else [int(i) for i in train_shards]
        self.validation_shards = [1] if validation_shards is None else [int(i) for i in validation_shards]
        self.test_shards = [0] if test_shards is None else [int(i) for i in test_shards]
        self.add_bos = bool(add_bos)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.root / ".recurrentkit-cache"
        # the release text is already tokenized: whitespace words, one </S> per line
        self._tokenizer = WordTokenizer(eos=EOS)
        self._streams: dict[str, Tensor] | None = None
        self._memmaps: dict[str, np.memmap] = {}

    # -- public -----------------------------------------------------------------------------------------------
    @property
    def files(self) -> dict[str, list[Path]]:
        """Shard files per split (checked to exist)."""
        return lm1b_files(self.root, self.train_shards, self.validation_shards, self.test_shards)

    def cache_paths(self) -> dict[str, Path]:
        """Files of this configuration's cache: ``vocab``, ``meta`` and one ``<split>`` id file per split."""
        key = self._cache_key()
        paths = {"vocab": self.cache_dir / f"vocab-{key}.json", "meta": self.cache_dir / f"meta-{key}.json",
                 "lock": self.cache_dir / f"{key}.lock"}
        for split in self.files:
            paths[split] = self.cache_dir / f"{split}-{key}.u32"
        return paths

    # -- Lightning hooks --------------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        self._build_cache()

    def state_dict(self) -> dict[str, Any]:
        """The vocab and the settings that made the ids (a checkpoint then knows its vocabulary)."""
        return {"vocab": self.vocab.state_dict(), "min_count": self.min_count, "add_bos": self.add_bos}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Check the checkpoint's vocab against this data's (or adopt it when none is built yet).

        Raises:
            ValueError: the checkpoint's vocab differs from the one this data gives.
        """
        if not isinstance(state_dict, Mapping) or "vocab" not in state_dict:
            raise ValueError("not a OneBillionWordDataModule state: expected a 'vocab' key")
        self._adopt_vocab(Vocab.from_state_dict(dict(state_dict["vocab"])))

    # -- internals --------------------------------------------------------------------------------------------
    def _source(self, split: str) -> str:
        return str(self.root)

    def _build_vocab(self) -> None:
        self._build_cache()

    def _cache_key(self) -> str:
        files = self.files
        desc = {"version": _CACHE_VERSION, "min_count": self.min_count, "max_vocab_size": self.max_vocab_size,
                "add_bos": self.add_bos,
                "files": {s: [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in ps]
                          for s, ps in files.items()}}
        return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]

    def _build_cache(self) -> None:
        """Count, build the vocab and encode every split, once (other processes wait on a file lock)."""
        from filelock import FileLock

        paths = self.cache_paths()
        if paths["meta"].is_file():
            if self._vocab is None:
                self._vocab = Vocab.load(paths["vocab"])
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(paths["lock"])):
            if paths["meta"].is_file():  # another process built it while we waited
                self._vocab = Vocab.load(paths["vocab"])
                return
            files = self.files
            vocab = self._count_vocab(files["train"])
            vocab.save(paths["vocab"])
            sizes = {split: self._encode(shards, vocab, paths[split]) for split, shards in files.items()}
            meta = {"version": _CACHE_VERSION, "root": str(self.root), "vocab_size": len(vocab), "tokens": sizes,
                    "min_count": self.min_count, "add_bos": self.add_bos,
                    "files": {s: [p.name for p in ps] for s, ps in files.items()}}
            tmp = paths["meta"].with_suffix(".tmp")
            tmp.write_text(json.dumps(meta, indent=1))
            tmp.replace(paths["meta"])  # written last: its presence means the cache is complete
            self._vocab = vocab

    def _count_vocab(self, shards: Sequence[Path]) -> Vocab:
        counts: Counter[str] = Counter()
        lines = 0
        for shard in shards:
            for words in _lines(shard):
                counts.update(words)
                lines += 1
        if not counts:
            raise ValueError(f"empty corpus: the training shards {[str(p) for p in shards]} hold no words")
        counts[EOS] += lines
        if self.add_bos:
            counts[BOS] += lines
        return Vocab.from_counts(counts, min_freq=self.min_count, max_size=self.max_vocab_size, specials=SPECIALS,
                                 unk_token=UNK, fold_pruned=True)

    def _encode(self, shards: Sequence[Path], vocab: Vocab, out: Path) -> int:
        """Append the ids of ``shards`` (one shard in memory at a time) to the ``uint32`` file ``out``."""
        index = {t: i for i, t in enumerate(vocab.tokens)}
        unk, eos, bos = index[UNK], index[EOS], index[BOS]
        total = 0
        tmp = out.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for shard in shards:
                ids: list[int] = []
                for words in _lines(shard):
                    if self.add_bos:
                        ids.append(bos)
                    ids.extend([index.get(w, unk) for w in words])
                    ids.append(eos)
                arr = np.asarray(ids, dtype=np.uint32)
                arr.tofile(f)
                total += arr.size
        tmp.replace(out)
        return total

    def _load_streams(self) -> dict[str, Tensor]:
        if self._streams is None:
            self._build_cache()
            paths = self.cache_paths()
            streams, maps = {}, {}
            for split in self.files:
                if paths[split].stat().st_size == 0:
                    raise ValueError(f"empty corpus: the {split} shards of {self.root} hold no tokens")
                # copy-on-write map: a writable array (torch wants one), never written back to disk
                maps[split] = np.memmap(paths[split], dtype=np.uint32, mode="c")
                streams[split] = torch.from_numpy(maps[split])
            self._streams, self._memmaps = streams, maps
        return self._streams

    def __getstate__(self) -> dict[str, Any]:
        # memory maps are reopened in a new process (ddp_spawn pickles the data module), not copied
        state = self.__dict__.copy()
        state["_streams"] = None
        state["_memmaps"] = {}
        state["_loaders"] = {}
        return state
