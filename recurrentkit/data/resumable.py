"""A training loader that resumes mid-epoch: batches whose order is a pure function of ``(seed, epoch)``.

:class:`ResumableBatches` wraps a :class:`~recurrentkit.data.bucketing.BucketBatchSampler` (whose order depends only
on its seed and epoch) and a dataset. It counts the batches it has served in the current epoch; ``state_dict()`` /
``load_state_dict()`` carry that position through a checkpoint (Lightning 2.x saves the state of a stateful train
loader under ``loops.fit_loop.state_dict.combined_loader`` and restores it before the first ``iter()``), so a
resumed run skips the batches already trained on instead of starting the epoch again. Skipping happens on the index
lists, before any example is loaded or collated.

It is not a ``DataLoader`` subclass on purpose: Lightning then leaves it as it is (no sampler re-injection); the
sampler shards the data across DDP ranks itself. Lightning's per-epoch ``set_epoch`` reaches the sampler through
``batch_sampler.sampler.set_epoch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import islice
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .bucketing import BucketBatchSampler


class _From(Sampler[list[int]]):
    """The batches of ``batch_sampler`` from the ``start``-th on."""

    def __init__(self, batch_sampler: BucketBatchSampler, start: int) -> None:
        self.batch_sampler, self.start = batch_sampler, start

    def __iter__(self) -> Iterator[list[int]]:
        return islice(iter(self.batch_sampler), self.start, None)

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.start, 0)


class ResumableBatches:
    """Batches of ``dataset`` in ``batch_sampler``'s order, resumable mid-epoch.

    ``len()`` is the whole epoch's batch count (Lightning adds the batches already done when it resumes). After
    ``load_state_dict``, the next iteration of the saved epoch starts at the first batch not yet served; any other
    epoch (or a saved epoch that was finished) starts at its beginning.

    Args:
        dataset: the examples.
        batch_sampler: yields this rank's index lists; its order must depend only on its seed and epoch.
        collate_fn, num_workers: as for ``torch.utils.data.DataLoader``.
    """

    def __init__(self, dataset: Dataset, batch_sampler: BucketBatchSampler, collate_fn: Callable | None = None,
                 num_workers: int = 0) -> None:
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.collate_fn, self.num_workers = collate_fn, num_workers
        self.epoch = batch_sampler.epoch  # epoch of the current (or last) iteration
        self.batch = 0  # batches served in that epoch
        self._resume: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def set_epoch(self, epoch: int) -> None:
        self.batch_sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Any]:
        return self._generate()

    def _generate(self) -> Iterator[Any]:
        # The position is decided on the first next(), not in iter(): Lightning calls iter() before set_epoch.
        epoch, start = self.batch_sampler.epoch, 0
        if self._resume is not None:
            saved_epoch, saved_batch = self._resume
            self._resume = None
            if saved_epoch == epoch and saved_batch < len(self):
                start = saved_batch
        self.epoch, self.batch = epoch, start
        # own generator: a DataLoader iterator otherwise draws its workers' base seed from the global RNG, so a
        # resumed run (which creates one more iterator) would shift the dropout masks that follow
        generator = torch.Generator().manual_seed(self.batch_sampler.seed + epoch)
        loader = DataLoader(self.dataset, batch_sampler=_From(self.batch_sampler, start), collate_fn=self.collate_fn,
                            num_workers=self.num_workers, generator=generator)
        for batch in loader:
            self.batch += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        sampler = self.batch_sampler
        return {"epoch": self.epoch, "batch": self.batch, "seed": sampler.seed, "batches": len(self),
                "examples": len(sampler.lengths), "batch_size": sampler.batch_size}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue where ``state`` was taken. Raises ValueError if the data or batching differ."""
        sampler = self.batch_sampler
        mine = {"seed": sampler.seed, "batches": len(self), "examples": len(sampler.lengths),
                "batch_size": sampler.batch_size}
        theirs = {k: state[k] for k in mine if k in state}
        if theirs != {k: mine[k] for k in theirs}:
            raise ValueError(f"cannot resume the training batches: the saved layout {theirs} differs from the current "
                             f"one {mine} (same data, batch_size, seed and world size are needed)")
        self._resume = (int(state["epoch"]), int(state["batch"]))
        self.epoch, self.batch = self._resume
