"""``SequenceTaggingTask``: a Lightning module training :class:`~recurrentkit.models.tagger.RecurrentTagger`.

Token accuracy for every tag set; entity-level precision, recall and F1 (``conlleval`` semantics, see
:mod:`recurrentkit.metrics.entities`) when the tags follow the BIO or BIOES scheme. ``predict_step`` returns the
decoded tags, which ``recurrentkit predict`` writes back as CoNLL-U (or ``token<TAB>tag``) through the data
module's ``write_predictions``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from ..metrics.entities import EntityScores, detect_scheme
from ..models.tagger import RecurrentTagger, lengths_mask
from .base import STAGES, Task

IGNORE_INDEX = -100


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """``(tokens, lengths, chars, labels)`` from a batch dict (``input_ids``, ``lengths``, ``chars``, ``labels``)."""
    if not isinstance(batch, Mapping) or "input_ids" not in batch:
        raise TypeError(f"a tagging batch is a dict with 'input_ids', 'lengths' (and 'chars', 'labels'), got "
                        f"{type(batch).__name__}")
    return batch["input_ids"], batch.get("lengths"), batch.get("chars"), batch.get("labels")


class SequenceTaggingTask(Task):
    """Part-of-speech tagging, named-entity recognition, chunking... with any registered cell.

    The model's arguments (``cell``, ``embedding_size``, ``hidden_size``, ``num_layers``, ``dropout``,
    ``word_dropout``, ``char_encoder``, ``char_hidden_size``, ``crf``, ...) are those of
    :class:`~recurrentkit.models.tagger.RecurrentTagger`, passed through ``**model_kwargs``.

    Args:
        vocab_size: word-embedding rows (the CLI links it from the data module).
        num_classes: number of tags (linked).
        char_vocab_size: characters, 0 for none (linked).
        label_names: the tags in index order (linked); BIO/BIOES names switch on the entity scores.
        optimizer: ``params -> Optimizer``, e.g. ``{class_path: torch.optim.Adam, init_args: {lr: 0.002}}`` in YAML.
        lr_scheduler: ``optimizer -> scheduler`` or ``None``; stepped every epoch (a ``ReduceLROnPlateau`` watches
            :attr:`monitor`).
        **model_kwargs: the arguments of :class:`~recurrentkit.models.tagger.RecurrentTagger`.

    Logged: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``test/loss``, ``test/acc`` (token accuracy),
    and with BIO/BIOES tags ``val/precision``, ``val/recall``, ``val/f1`` and the same for ``test``.
    """

    def __init__(self, vocab_size: int, num_classes: int, char_vocab_size: int = 0,
                 label_names: list[str] | None = None, optimizer: OptimizerCallable = torch.optim.Adam,
                 lr_scheduler: LRSchedulerCallable | None = None, **model_kwargs: Any) -> None:
        super().__init__(optimizer, lr_scheduler)
        if label_names is not None and len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label_names for num_classes={num_classes}")
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.model = RecurrentTagger(vocab_size, num_classes, char_vocab_size=char_vocab_size, **model_kwargs)
        self.label_names = list(label_names) if label_names is not None else [str(i) for i in range(num_classes)]
        self.scheme = detect_scheme(self.label_names)
        # ModuleDict keys can't be "train" (an nn.Module method): "acc_train", "entities_val", ...
        self.metrics = nn.ModuleDict({f"acc_{stage}": MulticlassAccuracy(num_classes, average="micro",
                                                                         ignore_index=IGNORE_INDEX)
                                      for stage in STAGES})
        if self.scheme:
            self.metrics.update({f"entities_{stage}": EntityScores() for stage in ("val", "test")})
        self.preprocessing: dict[str, Any] | None = None  # vocabularies and tag names, saved in checkpoints

    @property
    def monitor(self) -> str:
        """What a checkpoint callback or ``ReduceLROnPlateau`` should watch: ``val/f1`` for entities, else
        ``val/acc``."""
        return "val/f1" if self.scheme else "val/acc"

    # --- preprocessing that travels with the checkpoint -----------------------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and hasattr(self.datamodule, "preprocessing_state"):
            self.preprocessing = self.datamodule.preprocessing_state()

    def checkpoint_extras(self) -> dict[str, Any]:
        """``vocab``, ``char_vocab``, ``label_names``, ``lowercase``, ``max_word_length`` (the data module's
        ``preprocessing_state()``), so :meth:`tag` works from a checkpoint alone."""
        return {**super().checkpoint_extras(), **(self.preprocessing or {})}

    def load_checkpoint_extras(self, extras: dict[str, Any]) -> None:
        super().load_checkpoint_extras(extras)
        if "vocab" in extras:
            self.preprocessing = dict(extras)

    # --- forward and steps ----------------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None,
                chars: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token tag scores ``[B, T, num_classes]``."""
        return self.model(tokens, lengths, chars)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        tokens, lengths, chars, labels = _unpack(batch)
        if labels is None:
            raise ValueError("this batch has no labels")
        mask = lengths_mask(lengths, *tokens.shape, tokens.device)
        scores = self(tokens, lengths, chars)
        loss = self.model.loss(scores, labels.masked_fill(~mask, 0), mask)
        predicted = self.model.decode(scores.detach(), mask, pad_tag=0).masked_fill(~mask, IGNORE_INDEX)
        size = int(mask.sum())
        accuracy = self.metrics[f"acc_{stage}"]
        accuracy.update(predicted, labels)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "train", on_step=stage == "train", on_epoch=True,
                 batch_size=size)
        self.log(f"{stage}/acc", accuracy, prog_bar=stage == "val", on_step=False, on_epoch=True,
                 batch_size=size)
        if f"entities_{stage}" in self.metrics:
            self.metrics[f"entities_{stage}"].update(self._names(predicted, mask), self._names(labels, mask))
        return loss

    def _names(self, tags: torch.Tensor, mask: torch.Tensor) -> list[list[str]]:
        names = self.label_names
        return [[names[t] for t in row[m].tolist()] for row, m in zip(tags, mask)]

    def _log_entities(self, stage: str) -> None:
        if f"entities_{stage}" not in self.metrics:
            return
        metric = self.metrics[f"entities_{stage}"]
        scores = metric.compute()
        metric.reset()
        for name, value in scores.items():
            self.log(f"{stage}/{name}", value, prog_bar=stage == "val" and name == "f1")

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_entities("val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_entities("test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        """``{"tags": [B, T] (0 at padding), "lengths": [B]}`` (plus ``"index"`` when the batch has it)."""
        tokens, lengths, chars, _ = _unpack(batch)
        if lengths is None:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long, device=tokens.device)
        mask = lengths_mask(lengths, *tokens.shape, tokens.device)
        out = {"tags": self.model.decode(self(tokens, lengths, chars), mask), "lengths": lengths}
        if "index" in batch:
            out["index"] = batch["index"]
        return out

    # --- raw tokens -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def tag(self, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> list[list[str]]:
        """Tag tokenized sentences with the vocabularies saved in the checkpoint: one list of tag names per
        sentence."""
        if self.preprocessing is None:
            raise RuntimeError("no vocabulary: load a checkpoint trained with a TaggingDataModule")
        from ..data.tagging import TaggingCollator
        from ..data.vocab import Vocab

        pre = self.preprocessing
        vocab = Vocab.from_state_dict(pre["vocab"])
        chars = Vocab.from_state_dict(pre["char_vocab"]) if pre.get("char_vocab") else None
        cut = pre.get("max_word_length") or None
        items = []
        for i, sentence in enumerate(sentences):
            if not sentence:
                raise ValueError(f"sentence {i} is empty")
            ids = vocab.encode([t.lower() if pre.get("lowercase") else t for t in sentence])
            char_ids = None if chars is None else [chars.encode(list(t[:cut])) for t in sentence]
            items.append((i, ids, char_ids, None))
        was_training = self.training
        self.eval()
        out: list[list[str]] = []
        collate = TaggingCollator(vocab.pad_id or 0)
        for start in range(0, len(items), batch_size):
            batch = {k: v.to(self.device) for k, v in collate(items[start:start + batch_size]).items()}
            predicted = self.predict_step(batch, 0)
            for row, length in zip(predicted["tags"].tolist(), predicted["lengths"].tolist()):
                out.append([self.label_names[t] for t in row[:length]])
        self.train(was_training)
        return out
