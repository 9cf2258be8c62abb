"""Length-bucketing batch sampler: batches of similar lengths (little padding), shuffled across buckets, DDP-aware.

Each epoch: permute all indices (seeded by ``seed + epoch``, identical on every rank), cut the permutation into
pools of ``batch_size * pool_batches`` examples, sort each pool by length, cut it into batches, then shuffle the
batch order. Every example lands in exactly one batch. Under DDP the batch list is dealt round-robin to the ranks,
so each rank gets a disjoint part with the same number of batches (batches are split in two, never repeated or
dropped, when their count is not a multiple of the world size).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def _dist_info(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    if num_replicas is None or rank is None:
        import torch.distributed as dist

        initialized = dist.is_available() and dist.is_initialized()
        num_replicas = num_replicas if num_replicas is not None else (dist.get_world_size() if initialized else 1)
        rank = rank if rank is not None else (dist.get_rank() if initialized else 0)
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
    return num_replicas, rank


class _EpochSampler(Sampler[int]):
    """``batch_sampler.sampler``: this rank's indices in this epoch's order. Lightning calls ``set_epoch`` on a
    batch sampler's ``sampler`` (not on the batch sampler), so this forwards it."""

    def __init__(self, owner: BucketBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        return (i for batch in self.owner for i in batch)

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.owner)


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of indices whose ``lengths`` are close.

    Args:
        lengths: length of every example (index -> length).
        batch_size: examples per batch (the last batch of a pool may be smaller).
        shuffle: shuffle pools and batch order each epoch; ``False`` sorts all examples by length (evaluation).
        pool_batches: batches per sorting pool; larger means less padding but less randomness.
        drop_last: drop batches smaller than ``batch_size``.
        num_replicas, rank: DDP world size and this rank; default from ``torch.distributed`` when initialised,
            else a single process.
        seed: base seed; call :meth:`set_epoch` each epoch for a new order (Lightning does, through
            ``batch_sampler.sampler.set_epoch``).
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, pool_batches: int = 50,
                 drop_last: bool = False, num_replicas: int | None = None, rank: int | None = None,
                 seed: int = 0) -> None:
        if isinstance(lengths, Sampler):  # Lightning re-instantiating us around its DistributedSampler
            raise TypeError("BucketBatchSampler splits the data across DDP ranks itself: run with "
                            "Trainer(use_distributed_sampler=False)")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if pool_batches < 1:
            raise ValueError(f"pool_batches must be >= 1, got {pool_batches}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        if len(self.lengths) == 0:
            raise ValueError("BucketBatchSampler got no examples")
        self.batch_size, self.shuffle, self.pool_batches = batch_size, shuffle, pool_batches
        self.drop_last, self.seed, self.epoch = drop_last, seed, 0
        self.num_replicas, self.rank = _dist_info(num_replicas, rank)
        self.sampler = _EpochSampler(self)
        if not drop_last and len(self.lengths) < self.num_replicas:
            raise ValueError(f"{len(self.lengths)} examples cannot give every one of {self.num_replicas} ranks a batch")

    def set_epoch(self, epoch: int) -> None:
        """Use a new order for ``epoch`` (same on every rank)."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=gen)
            pool = self.batch_size * self.pool_batches
        else:
            gen, order, pool = None, torch.arange(n), n
        batches: list[list[int]] = []
        for start in range(0, n, pool):
            chunk = order[start:start + pool]
            # stable sort so equal lengths keep the (random) pool order
            chunk = chunk[torch.sort(self.lengths[chunk], stable=True).indices]
            for b in range(0, len(chunk), self.batch_size):
                batch = chunk[b:b + self.batch_size].tolist()
                if self.drop_last and len(batch) < self.batch_size:
                    continue
                batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
        if self.num_replicas > 1:
            if self.drop_last:
                batches = batches[:len(batches) - len(batches) % self.num_replicas]
            else:
                while len(batches) % self.num_replicas:  # split the largest batch: nothing repeated or lost
                    i = max(range(len(batches)), key=lambda j: len(batches[j]))
                    if len(batches[i]) < 2:
                        raise ValueError(f"cannot deal {len(batches)} single-example batches evenly to "
                                         f"{self.num_replicas} ranks; use drop_last=True or a larger batch_size")
                    half = len(batches[i]) // 2
                    batches[i:i + 1] = [batches[i][:half], batches[i][half:]]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._all_batches()[self.rank::self.num_replicas]

    def __len__(self) -> int:
        n = len(self.lengths)
        if self.drop_last:
            pool = self.batch_size * self.pool_batches if self.shuffle else n
            full = (n // pool) * (pool // self.batch_size) + (n % pool) // self.batch_size
            return full // self.num_replicas
        pool = self.batch_size * self.pool_batches if self.shuffle else n
        count = (n // pool) * math.ceil(pool / self.batch_size) + math.ceil((n % pool) / self.batch_size)
        return math.ceil(count / self.num_replicas)
