"""Per-split sources -> encoded variable-length examples -> padded, length-bucketed batches.

:class:`SequenceDataModule` is the base of the data modules whose examples are whole sequences of varying length
(:class:`~recurrentkit.data.classification.ClassificationDataModule`: a label per sentence;
:class:`~recurrentkit.data.tagging.TaggingDataModule`: a tag per token). The stages are ``"train"``, ``"val"``,
``"test"`` and ``"predict"``. A labelled stage is read from a local file (``train_file``, ...; a relative path is
tried from the working directory, then under the data directory of :func:`~recurrentkit.data.presets.resolve_data_dir`)
or from a split of ``datasets.load_dataset(dataset, dataset_config)``; ``predict`` always from ``predict_file``.
Training batches are drawn by :class:`~recurrentkit.data.bucketing.BucketBatchSampler` (examples of similar length
together, sharded by rank under DDP) or shuffled plainly (``bucketing=False``), in an order that is a function of
``(seed, epoch)`` only, served by :class:`~recurrentkit.data.resumable.ResumableBatches` so a run resumes exactly
mid-epoch; evaluation batches are sorted by length; prediction batches keep the file order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
from torch.utils.data import DataLoader, Dataset

from .bucketing import BucketBatchSampler
from .presets import Preset, get_preset, resolve_data_dir
from .resumable import ResumableBatches

__all__ = ["SequenceDataModule", "STAGES"]

STAGES = ("train", "val", "test", "predict")
_SETUP_STAGES = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("predict",)}


class SequenceDataModule(L.LightningDataModule):
    """Base of the sequence data modules: where each split comes from, and how its examples are batched.

    A subclass implements:

    - ``_from_file(path, stage)`` and ``_from_dataset(ds, origin, stage)``: one split as read (an object with
      ``len()`` and an ``origin``), from a local file or a ``datasets`` split;
    - ``prepare_vocab()``: vocabularies and label set from the training split (once);
    - ``encoded(stage)``: the encoded split, a ``Dataset`` with a ``lengths`` list (built once);
    - ``collate(data)``: the collate function for batches of ``data``.

    The constructor arguments are those of the subclasses (see :class:`ClassificationDataModule`).
    ``shard_evaluation = False`` makes every DDP rank evaluate the whole validation and test sets instead of its own
    share (for a corpus-level metric whose task does not gather the ranks' outputs; ``Seq2SeqTask`` does gather).
    """

    shard_evaluation: ClassVar[bool] = True

    def __init__(self, *, preset: str | None, data_dir: str | None, train_file: str | None, val_file: str | None,
                 test_file: str | None, predict_file: str | None, dataset: str | None, dataset_config: str | None,
                 train_split: str | None, val_split: str | None, test_split: str | None, batch_size: int,
                 eval_batch_size: int | None, bucketing: bool, pool_batches: int, num_workers: int,
                 seed: int) -> None:
        super().__init__()
        if dataset is None and train_file is None:
            raise ValueError("give a preset, a dataset, or a train_file")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.preset, self.dataset, self.dataset_config = preset, dataset, dataset_config
        self.data_dir = resolve_data_dir(data_dir or None)
        self.train_file, self.val_file, self.test_file = train_file, val_file, test_file
        self.predict_file = predict_file
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.bucketing, self.pool_batches = bool(bucketing), int(pool_batches)
        self.num_workers, self.seed = int(num_workers), int(seed)
        self._raw: dict[str, Any] = {}
        self._encoded: dict[str, Dataset] = {}

    @staticmethod
    def preset_arguments(preset: Preset) -> dict[str, Any]:
        """The constructor arguments a preset fills in: its files (``train_file``, ...) and its ``options``."""
        return {"train_file": preset.files.get("train"), "val_file": preset.files.get("validation"),
                "test_file": preset.files.get("test"), **preset.options}

    # -- what a subclass provides ---------------------------------------------------------------------------------
    def _from_file(self, path: str, stage: str) -> Any:
        raise NotImplementedError

    def _from_dataset(self, ds: Any, origin: str, stage: str) -> Any:
        raise NotImplementedError

    def prepare_vocab(self) -> None:
        raise NotImplementedError

    def encoded(self, stage: str) -> Dataset:
        raise NotImplementedError

    def collate(self, data: Dataset) -> Callable:
        raise NotImplementedError

    # -- sources --------------------------------------------------------------------------------------------------
    def _resolve(self, path: str) -> str:
        p = Path(path).expanduser()
        if p.is_absolute() or p.exists() or self.data_dir is None:
            return str(p)
        return str(self.data_dir / p)

    def _file_for(self, stage: str) -> str | None:
        return {"train": self.train_file, "val": self.val_file, "test": self.test_file,
                "predict": self.predict_file}[stage]

    def has_split(self, stage: str) -> bool:
        """Whether the ``"train"``/``"val"``/``"test"``/``"predict"`` split is configured."""
        if stage == "predict":
            return self.predict_file is not None
        return self._file_for(stage) is not None if self.dataset is None else self.splits[stage] is not None

    def raw_split(self, stage: str) -> Any:
        """The split of ``stage`` as read (once)."""
        if stage not in self._raw:
            if not self.has_split(stage):
                raise ValueError(self._no_split_message(stage))
            self._raw[stage] = self._read_split(stage)
        return self._raw[stage]

    def _read_split(self, stage: str) -> Any:
        """Read the source of ``stage``: the one place where the files and the hub dataset are opened."""
        if self.dataset is not None and stage != "predict":
            from datasets import load_dataset

            split = self.splits[stage]
            raw = self._from_dataset(load_dataset(self.dataset, self.dataset_config, split=split),
                                     f"{self.dataset}[{split}]", stage)
        else:
            path = self._resolve(self._file_for(stage))
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{stage} file not found: {path}")
            raw = self._from_file(path, stage)
        if len(raw) == 0:
            raise ValueError(f"{raw.origin}: the {stage} split is empty")
        return raw

    def _no_split_message(self, stage: str) -> str:
        if stage == "predict":
            return "set predict_file to predict"
        where = f"{stage}_split" if self.dataset is not None else f"{stage}_file"
        about = f" (preset {self.preset!r}: {get_preset(self.preset).description})" if self.preset else ""
        return f"no {stage} split is configured: set {where}{about}"

    # -- Lightning hooks ------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        self.prepare_vocab()
        for split in _SETUP_STAGES.get(stage, ("train", "val", "test")):
            if self.has_split(split):
                self.encoded(split)

    def _loader(self, stage: str, train: bool) -> DataLoader:
        if not self.has_split(stage):
            raise ValueError(self._no_split_message(stage))
        data = self.encoded(stage)
        collate = self.collate(data)
        batch_size = self.batch_size if train else self.eval_batch_size
        if stage == "predict":  # plain order: Lightning wraps predict samplers to track indices
            return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate,
                              num_workers=self.num_workers)
        if self.bucketing or not train:
            trainer = getattr(self, "trainer", None)
            if train or self.shard_evaluation:  # this rank's share (the sampler asks torch.distributed without one)
                replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (None, None)
            else:  # every rank evaluates everything
                replicas, rank = 1, 0
            sampler = BucketBatchSampler(data.lengths, batch_size, shuffle=train, pool_batches=self.pool_batches,
                                         num_replicas=replicas, rank=rank, seed=self.seed)
            if train:  # resumable mid-epoch: the order is a function of (seed, epoch)
                return ResumableBatches(data, sampler, collate_fn=collate, num_workers=self.num_workers)
            return DataLoader(data, batch_sampler=sampler, collate_fn=collate, num_workers=self.num_workers)
        # plain shuffling: the same sampler with equal lengths is a seeded permutation per epoch, resumable
        trainer = getattr(self, "trainer", None)
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (None, None)
        sampler = BucketBatchSampler([0] * len(data), batch_size, shuffle=True, num_replicas=replicas, rank=rank,
                                     seed=self.seed)
        return ResumableBatches(data, sampler, collate_fn=collate, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", train=False)
