"""``ClassificationTask``: a Lightning module training :class:`~recurrentkit.models.classifier.RecurrentClassifier`.

Accuracy and macro-F1 (torchmetrics), a confusion-matrix image at the end of each validation
(:mod:`recurrentkit.callbacks.confusion_matrix`), ``predict_step`` returning labels and probabilities (written as a
TSV by ``recurrentkit predict``, see :mod:`recurrentkit.callbacks.predictions`), and raw-string prediction from a
checkpoint (the tokenizer, vocabulary and label names are saved in it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch.nn import functional as F
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from ..models.classifier import RecurrentClassifier
from .base import STAGES, Task, load_text_extras

LEGACY_CHECKPOINT_KEY = "recurrentkit_classification"  # where checkpoints before 0.2 kept the preprocessing


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(tokens, lengths, labels)`` from a batch dict (``input_ids``, ``lengths``, ``labels``) or tuple."""
    if isinstance(batch, Mapping):
        return batch["input_ids"], batch.get("lengths"), batch.get("labels")
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        tokens, lengths, labels = (*batch, None, None)[:3]
        return tokens, lengths, labels
    raise TypeError(f"a batch must be a dict with 'input_ids', 'lengths', 'labels' or a tuple "
                    f"(tokens, lengths, labels), got {type(batch).__name__}")


def _metrics(stage: str, num_classes: int) -> MetricCollection:
    """``{stage}/acc`` (and ``{stage}/f1``, macro, outside training)."""
    metrics = {"acc": MulticlassAccuracy(num_classes, average="micro")}
    if stage != "train":
        metrics["f1"] = MulticlassF1Score(num_classes, average="macro")
    return MetricCollection(metrics, prefix=f"{stage}/")


class ClassificationTask(Task):
    """Sentence classification with any registered cell.

    The model's arguments (``cell``, ``embedding_size``, ``hidden_size``, ``num_layers``, ``bidirectional``,
    ``pooling``, ``dropout``, ``head_hidden_size``, ``freeze_embedding``, ``embedding_init_std``, ``cell_kwargs``, ...)
    are those of :class:`~recurrentkit.models.classifier.RecurrentClassifier`, passed through ``**model_kwargs``.

    Args:
        vocab_size: embedding rows (the CLI links it from the data module).
        num_classes: classes (linked from the data module).
        optimizer: ``params -> Optimizer``, e.g. ``torch.optim.Adam`` or ``{class_path: torch.optim.Adam, init_args:
            {lr: 0.002}}`` in YAML. Only parameters that require gradients are given to it (with ``cell="esn"``:
            the embedding and head; the reservoir is fixed).
        lr_scheduler: ``optimizer -> scheduler`` or ``None`` (a ``ReduceLROnPlateau`` watches ``val/loss``).
        pretrained_embeddings: a word2vec-text/GloVe file; its vectors initialise the embedding at the start of
            ``fit`` (the OOV words are reported). Its dimension must equal ``embedding_size``.
        pretrained_lower: match vocabulary words to lowercase vectors when the exact form is missing.
        label_smoothing: cross-entropy label smoothing.
        confusion_matrix: draw the validation confusion matrix each epoch.
        **model_kwargs: the arguments of :class:`~recurrentkit.models.classifier.RecurrentClassifier`.

    Logged: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``, ``val/f1`` (macro), ``test/loss``,
    ``test/acc``, ``test/f1``; the image ``val/confusion_matrix``.
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, optimizer: OptimizerCallable = torch.optim.Adam,
                 lr_scheduler: LRSchedulerCallable | None = None, pretrained_embeddings: str | None = None,
                 pretrained_lower: bool = False, label_smoothing: float = 0.0, confusion_matrix: bool = True,
                 **model_kwargs: Any) -> None:
        super().__init__(optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.model = RecurrentClassifier(vocab_size, num_classes, **model_kwargs)
        self.label_smoothing, self.confusion_matrix = label_smoothing, confusion_matrix
        self.train_metrics, self.val_metrics, self.test_metrics = (_metrics(stage, num_classes) for stage in STAGES)
        self.val_cm = MulticlassConfusionMatrix(num_classes)
        self.preprocessing: dict[str, Any] | None = None  # tokenizer/vocab/labels, saved in checkpoints
        self.pretrained_report = None
        self._tokenizer = self._vocab = None

    # --- preprocessing that travels with the checkpoint ----------------------------------------------------------
    def set_preprocessing(self, state: Mapping[str, Any]) -> None:
        """Adopt ``{"tokenizer", "vocab", "label_names", "max_length", "lowercase"}`` (a data module's
        ``preprocessing_state()``) so :meth:`predict_texts` can read raw strings."""
        vocab, tokenizer = load_text_extras(dict(state))
        if len(vocab) != self.hparams.vocab_size:
            raise ValueError(f"the vocabulary has {len(vocab)} entries but the model vocab_size is "
                             f"{self.hparams.vocab_size}")
        if len(state["label_names"]) != self.hparams.num_classes:
            raise ValueError(f"{len(state['label_names'])} label names for num_classes={self.hparams.num_classes}")
        self.preprocessing = dict(state)
        self._tokenizer, self._vocab = tokenizer, vocab

    @property
    def label_names(self) -> list[str]:
        if self.preprocessing is not None:
            return list(self.preprocessing["label_names"])
        return [str(i) for i in range(self.hparams.num_classes)]

    def setup(self, stage: str) -> None:
        datamodule = self.datamodule
        if datamodule is not None and hasattr(datamodule, "preprocessing_state") and stage == "fit":
            self.set_preprocessing(datamodule.preprocessing_state())
        if stage == "fit" and self.hparams.pretrained_embeddings and self.pretrained_report is None:
            if self._vocab is None:
                raise ValueError("pretrained_embeddings needs the vocabulary: train with a ClassificationDataModule "
                                 "or call set_preprocessing() first")
            self.pretrained_report = self.model.load_pretrained_embeddings(
                self.hparams.pretrained_embeddings, self._vocab.tokens, lower=self.hparams.pretrained_lower,
                freeze=bool(self.hparams.get("freeze_embedding", False)))
            rank_zero_info(f"pretrained embeddings: {self.pretrained_report}")

    def checkpoint_extras(self) -> dict[str, Any]:
        """``vocab``, ``tokenizer``, ``label_names``, ``max_length``, ``lowercase`` (the data module's
        ``preprocessing_state()``)."""
        return {**super().checkpoint_extras(), **(self.preprocessing or {})}

    def load_checkpoint_extras(self, extras: dict[str, Any]) -> None:
        super().load_checkpoint_extras(extras)
        if "vocab" in extras:
            self.set_preprocessing(extras)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if LEGACY_CHECKPOINT_KEY in checkpoint:  # an older checkpoint: same dict, other key
            checkpoint.setdefault("recurrentkit", checkpoint[LEGACY_CHECKPOINT_KEY])
        super().on_load_checkpoint(checkpoint)

    # --- forward and steps ------------------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(tokens, lengths)

    def _step(self, batch: Any, stage: str) -> torch.Tensor:
        """Loss and metrics of one labelled batch, logged as ``{stage}/loss`` and ``{stage}/acc`` (, ``/f1``)."""
        tokens, lengths, labels = _unpack(batch)
        if labels is None:
            raise ValueError("this batch has no labels")
        logits = self(tokens, lengths)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(logits, labels)
        if stage == "val":
            self.val_cm.update(logits, labels)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "train", batch_size=len(labels))
        self.log_dict(metrics, prog_bar=stage == "val", on_step=False, on_epoch=True, batch_size=len(labels))
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        """``{"label": [B], "probs": [B, C]}`` (plus ``"index"`` when the batch has it)."""
        tokens, lengths, _ = _unpack(batch)
        probs = torch.softmax(self(tokens, lengths), dim=-1)
        out = {"label": probs.argmax(-1), "probs": probs}
        if isinstance(batch, Mapping) and "index" in batch:
            out["index"] = batch["index"]
        return out

    def on_validation_epoch_end(self) -> None:
        from ..callbacks.confusion_matrix import log_confusion_matrix

        matrix = self.val_cm.compute()
        self.val_cm.reset()
        if not self.confusion_matrix or self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        folder = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "confusion_matrix"
        log_confusion_matrix(matrix.cpu(), self.label_names, self.logger, self.current_epoch, self.global_step, folder)

    # --- raw strings ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_texts(self, texts: Sequence[str], batch_size: int = 64) -> list[dict[str, Any]]:
        """Classify raw strings: ``[{"text", "label", "label_id", "probs": {name: p}}]`` in input order."""
        if self._vocab is None:
            raise RuntimeError("no tokenizer/vocabulary: load a checkpoint trained with a ClassificationDataModule "
                               "or call set_preprocessing()")
        if isinstance(texts, str):
            texts = [texts]
        pre, names = self.preprocessing, self.label_names
        encoded = []
        for i, text in enumerate(texts):
            tokens = self._tokenizer.tokenize(text.lower() if pre.get("lowercase") else text) if text else []
            if not tokens:
                raise ValueError(f"text {i} is empty: {text!r}")
            encoded.append(self._vocab.encode(tokens[:pre["max_length"]] if pre.get("max_length") else tokens))
        was_training = self.training
        self.eval()
        results: list[dict[str, Any]] = []
        pad = self._vocab.pad_id or 0
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start:start + batch_size]
            lengths = torch.tensor([len(x) for x in chunk])
            tokens = torch.full((len(chunk), int(lengths.max())), pad, dtype=torch.long)
            for row, ids in enumerate(chunk):
                tokens[row, :len(ids)] = torch.tensor(ids)
            probs = torch.softmax(self(tokens.to(self.device), lengths.to(self.device)), -1).cpu()
            for offset, p in enumerate(probs):
                label_id = int(p.argmax())
                results.append({"text": texts[start + offset], "label": names[label_id], "label_id": label_id,
                                "probs": {n: float(v) for n, v in zip(names, p)}})
        self.train(was_training)
        return results


__all__ = ["ClassificationTask"]
