"""Contiguous token streams for language modelling: one 1-D id stream per split -> ``B`` rows -> ``[B, T]`` windows.

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

:class:`TokenStreamDataModule` is the base of every language-model data module (:mod:`~recurrentkit.data.lm` for
text files and hub datasets, :mod:`~recurrentkit.data.lm1b` for the One Billion Word release): a subclass only says
how its streams and vocabulary are made; sharding, batching, loaders, encode/decode and the checkpoint's vocab check
live here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor

from .tokenizers import Tokenizer
from .vocab import Vocab

__all__ = ["TokenStreamDataModule", "BPTTBatches", "batchify", "bptt_window_lengths", "SPLITS", "SPLIT_ALIASES"]

SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
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

    Windows are served as ``int64`` whatever the stream's dtype, so a ``uint32`` memory-mapped stream (LM1B) is only
    copied one window at a time.

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
            yield x.long(), y.long()  # a no-op for int64 streams; a copy of one window for uint32 memory maps

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
# the base data module
# ---------------------------------------------------------------------------------------------------------------
class TokenStreamDataModule(L.LightningDataModule):
    """Base of the language-model data modules: per-split id streams -> this rank's ``[B, N]`` rows -> BPTT batches.

    A subclass makes the streams and the vocabulary, sets ``self._tokenizer`` in its ``__init__`` (after calling
    this one), and implements:

    - ``_load_streams() -> {split: 1-D id tensor}`` (``train`` required; ``validation``/``test`` optional), which also
      sets ``self._vocab``;
    - ``_build_vocab()`` when the vocabulary is cheaper to get than the streams (default: ``_load_streams()``);
    - ``_source(split)``: where a split comes from, for error messages;
    - ``state_dict()`` (it should hold ``vocab.state_dict()``); ``load_state_dict`` calls :meth:`_adopt_vocab`.

    Args:
        batch_size, eval_batch_size: rows B (per rank) of the train / validation+test streams (eval defaults to
            ``batch_size``).
        bptt: window length T.
        variable_bptt: AWD-LSTM variable-length windows for training (:func:`bptt_window_lengths`).
        seed: seed of the variable-BPTT draws.
    """

    #: what a user must keep equal for a checkpoint's vocab to match (completes the "vocab mismatch" message)
    vocab_settings: ClassVar[str] = "data and vocabulary settings"

    def __init__(self, batch_size: int, eval_batch_size: int | None, bptt: int, variable_bptt: bool,
                 seed: int) -> None:
        super().__init__()
        for arg, val in (("batch_size", batch_size), ("bptt", bptt)):
            if int(val) < 1:
                raise ValueError(f"{arg} must be >= 1, got {val}")
        if eval_batch_size is not None and int(eval_batch_size) < 1:
            raise ValueError(f"eval_batch_size must be >= 1, got {eval_batch_size}")
        self.batch_size = int(batch_size)
        self.eval_batch_size = self.batch_size if eval_batch_size is None else int(eval_batch_size)
        self.bptt = int(bptt)
        self.variable_bptt = bool(variable_bptt)
        self.seed = int(seed)
        self._tokenizer: Tokenizer | None = None
        self._vocab: Vocab | None = None
        self._loaders: dict[str, BPTTBatches] = {}

    # -- what a subclass provides ---------------------------------------------------------------------------------
    def _load_streams(self) -> dict[str, Tensor]:
        raise NotImplementedError

    def _build_vocab(self) -> None:
        self._load_streams()

    def _source(self, split: str) -> str:
        return "the corpus"

    # -- public properties ----------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Tokenizer:
        """The tokenizer that turns text into this data's tokens."""
        return self._tokenizer

    @property
    def vocab(self) -> Vocab:
        """The vocab (built on the training split on first access)."""
        if self._vocab is None:
            self._build_vocab()
        assert self._vocab is not None
        return self._vocab

    @property
    def vocab_size(self) -> int:
        """``len(vocab)``; builds the vocab lazily so LightningCLI can link it at instantiation."""
        return len(self.vocab)

    @property
    def char_level(self) -> bool:
        """True when a token is a character (the char tokenizer, or pre-spaced characters read by the word
        tokenizer with ``join=""``); the CLI links it into the task, which then reports bits per character."""
        return self.tokenizer.char_level

    def token_stream(self, split: str = "train") -> Tensor:
        """The whole 1-D id stream of a split (before batching and sharding)."""
        split = SPLIT_ALIASES.get(split, split)
        streams = self._load_streams()
        if split not in streams:
            raise KeyError(f"split {split!r} is not available; have {sorted(streams)}")
        return streams[split]

    def encode(self, text: str) -> Tensor:
        """Tokenize and map ``text`` to a 1-D LongTensor of ids."""
        return torch.tensor(self.vocab.encode(self.tokenizer.tokenize(text)), dtype=torch.long)

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """Map ids back to text."""
        return self.tokenizer.detokenize(self.vocab.decode(ids))

    # -- Lightning hooks ------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Cut every split into this rank's ``[B, N]`` rows and wrap them in :class:`BPTTBatches`."""
        streams = self._load_streams()
        rank, world = self._rank_and_world()
        self._loaders = {}
        for split, stream in streams.items():
            bsz = self.batch_size if split == "train" else self.eval_batch_size
            try:
                rows = batchify(stream, bsz, rank, world)
            except ValueError as err:
                raise ValueError(f"{split} split of {self._source(split)}: {err}") from None
            self._loaders[split] = BPTTBatches(rows, self.bptt, variable=self.variable_bptt and split == "train",
                                               seed=self.seed)

    def train_dataloader(self) -> BPTTBatches:
        return self._loader("train")

    def val_dataloader(self) -> BPTTBatches | list:
        return self._loader("validation", required=False)

    def test_dataloader(self) -> BPTTBatches | list:
        return self._loader("test", required=False)

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

    def _adopt_vocab(self, theirs: Vocab) -> None:
        """Take a checkpoint's vocab when none is built yet, else check that it is the same.

        Raises:
            ValueError: the checkpoint's vocab differs from the one this data gives (the message names the first id
                that differs and :attr:`vocab_settings`).
        """
        if self._vocab is None:
            self._vocab = theirs
            return
        mine = self._vocab
        if mine.tokens != theirs.tokens:
            diff = next((i for i, (a, b) in enumerate(zip(mine.tokens, theirs.tokens)) if a != b),
                        min(len(mine), len(theirs)))
            raise ValueError(
                f"vocab mismatch: the checkpoint's vocab has {len(theirs)} tokens, this data gives {len(mine)}; "
                f"first difference at id {diff}. Use the same {self.vocab_settings} as the run that wrote the "
                "checkpoint."
            )
