"""``ClassificationTask``: a Lightning module training :class:`~recurrentkit.models.classifier.RecurrentClassifier`.

Accuracy and macro-F1 (torchmetrics), a confusion-matrix image at the end of each validation, ``predict_step``
returning labels and probabilities, and raw-string prediction from a checkpoint (the tokenizer, vocabulary and
label names are saved in it). ``python -m recurrentkit.tasks.classification recipes/sst2/bilstm.yaml`` trains a
recipe without the CLI.
"""

from __future__ import annotations

import argparse
import copy
import functools
import importlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from ..models.classifier import RecurrentClassifier

CHECKPOINT_KEY = "recurrentkit_classification"


def _unpack(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """``(tokens, lengths, labels)`` from a batch dict (``input_ids``, ``lengths``, ``labels``) or tuple."""
    if isinstance(batch, Mapping):
        return batch["input_ids"], batch.get("lengths"), batch.get("labels")
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        tokens, lengths, labels = (*batch, None, None)[:3]
        return tokens, lengths, labels
    raise TypeError(f"a batch must be a dict with 'input_ids', 'lengths', 'labels' or a tuple "
                    f"(tokens, lengths, labels), got {type(batch).__name__}")


class ClassificationTask(L.LightningModule):
    """Sentence classification with any registered cell.

    Args:
        vocab_size: embedding rows (the CLI links it from the data module).
        num_classes: classes (linked from the data module).
        cell: registered cell name (``"lstm"``, ``"gru"``, ``"leaky"``, ``"esn"``, ...).
        embedding_size, hidden_size, num_layers, bidirectional: the recurrent encoder.
        pooling: ``"last"``, ``"mean"``, ``"max"`` or ``"attention"``.
        dropout: on embeddings, between layers and in the head.
        head_hidden_size: hidden width of the MLP head (``None``: linear head).
        cell_kwargs: extra cell arguments (``{"spectral_radius": 0.9, "leak_rate": 0.5}`` for ``"esn"``).
        pretrained_embeddings: a word2vec-text/GloVe file; its vectors initialise the embedding at the start of
            ``fit`` (the OOV words are reported). Its dimension must equal ``embedding_size``.
        pretrained_lower: match vocabulary words to lowercase vectors when the exact form is missing.
        freeze_embedding: keep the embedding fixed.
        embedding_init_std: ``N(0, std²)`` embedding init (``None``: PyTorch's ``N(0, 1)``).
        optimizer: optimizer factory, e.g. ``torch.optim.Adam`` or ``{class_path: torch.optim.Adam, init_args:
            {lr: 0.002}}`` in YAML. Only parameters that require gradients are given to it (with ``cell="esn"``:
            the embedding and head; the reservoir is fixed).
        label_smoothing: cross-entropy label smoothing.
        confusion_matrix: draw the validation confusion matrix each epoch.
    """

    def __init__(self, vocab_size: int, num_classes: int = 2, cell: str = "lstm", embedding_size: int = 128,
                 hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False, pooling: str = "last",
                 dropout: float = 0.0, head_hidden_size: int | None = None, cell_kwargs: dict[str, Any] | None = None,
                 pretrained_embeddings: str | None = None, pretrained_lower: bool = False,
                 freeze_embedding: bool = False, embedding_init_std: float | None = None,
                 optimizer: OptimizerCallable = torch.optim.Adam,
                 label_smoothing: float = 0.0, confusion_matrix: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer"])
        self.model = RecurrentClassifier(vocab_size, num_classes, cell=cell, embedding_size=embedding_size,
                                         hidden_size=hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                         pooling=pooling, dropout=dropout, head_hidden_size=head_hidden_size,
                                         freeze_embedding=freeze_embedding, embedding_init_std=embedding_init_std,
                                         cell_kwargs=cell_kwargs)
        self.optimizer = optimizer
        self.label_smoothing, self.confusion_matrix = label_smoothing, confusion_matrix
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_f1 = MulticlassF1Score(num_classes, average="macro")
        self.val_cm = MulticlassConfusionMatrix(num_classes)
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_f1 = MulticlassF1Score(num_classes, average="macro")
        self.preprocessing: dict[str, Any] | None = None  # tokenizer/vocab/labels, saved in checkpoints
        self.pretrained_report = None
        self._tokenizer = self._vocab = None

    # --- preprocessing that travels with the checkpoint ----------------------------------------------------------
    def set_preprocessing(self, state: Mapping[str, Any]) -> None:
        """Adopt ``{"tokenizer", "vocab", "label_names", "max_length", "lowercase"}`` (a data module's
        ``preprocessing_state()``) so :meth:`predict_texts` can read raw strings."""
        from ..data.tokenizers import build_tokenizer
        from ..data.vocab import Vocab

        vocab = Vocab.from_state_dict(state["vocab"])
        if len(vocab) != self.hparams.vocab_size:
            raise ValueError(f"the vocabulary has {len(vocab)} entries but the model vocab_size is "
                             f"{self.hparams.vocab_size}")
        if len(state["label_names"]) != self.hparams.num_classes:
            raise ValueError(f"{len(state['label_names'])} label names for num_classes={self.hparams.num_classes}")
        self.preprocessing = dict(state)
        self._tokenizer, self._vocab = build_tokenizer(state["tokenizer"]), vocab

    @property
    def label_names(self) -> list[str]:
        if self.preprocessing is not None:
            return list(self.preprocessing["label_names"])
        return [str(i) for i in range(self.hparams.num_classes)]

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if datamodule is not None and hasattr(datamodule, "preprocessing_state") and stage == "fit":
            self.set_preprocessing(datamodule.preprocessing_state())
        if stage == "fit" and self.hparams.pretrained_embeddings and self.pretrained_report is None:
            if self._vocab is None:
                raise ValueError("pretrained_embeddings needs the vocabulary: train with a ClassificationDataModule "
                                 "or call set_preprocessing() first")
            self.pretrained_report = self.model.load_pretrained_embeddings(
                self.hparams.pretrained_embeddings, self._vocab.tokens, lower=self.hparams.pretrained_lower,
                freeze=self.hparams.freeze_embedding)
            rank_zero_info(f"pretrained embeddings: {self.pretrained_report}")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.preprocessing is not None:
            checkpoint[CHECKPOINT_KEY] = self.preprocessing

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if CHECKPOINT_KEY in checkpoint:
            self.set_preprocessing(checkpoint[CHECKPOINT_KEY])

    # --- forward and steps ------------------------------------------------------------------------------------------
    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(tokens, lengths)

    def _shared_step(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens, lengths, labels = _unpack(batch)
        if labels is None:
            raise ValueError("this batch has no labels")
        logits = self(tokens, lengths)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        return loss, logits, labels

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, logits, labels = self._shared_step(batch)
        self.train_acc(logits, labels)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(labels))
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, logits, labels = self._shared_step(batch)
        self.val_acc(logits, labels)
        self.val_f1(logits, labels)
        self.val_cm.update(logits, labels)
        kw = {"on_epoch": True, "batch_size": len(labels)}
        self.log("val_loss", loss, **kw)
        self.log("val_acc", self.val_acc, prog_bar=True, **kw)
        self.log("val_f1", self.val_f1, **kw)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        loss, logits, labels = self._shared_step(batch)
        self.test_acc(logits, labels)
        self.test_f1(logits, labels)
        kw = {"on_epoch": True, "batch_size": len(labels)}
        self.log("test_loss", loss, **kw)
        self.log("test_acc", self.test_acc, **kw)
        self.log("test_f1", self.test_f1, **kw)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        """``{"label": [B], "probs": [B, C]}`` (plus ``"index"`` when the batch has it)."""
        tokens, lengths, _ = _unpack(batch)
        probs = torch.softmax(self(tokens, lengths), dim=-1)
        out = {"label": probs.argmax(-1), "probs": probs}
        if isinstance(batch, Mapping) and "index" in batch:
            out["index"] = batch["index"]
        return out

    def on_validation_epoch_end(self) -> None:
        matrix = self.val_cm.compute()
        self.val_cm.reset()
        if not self.confusion_matrix or self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        folder = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "confusion_matrix"
        log_confusion_matrix(matrix.cpu(), self.label_names, self.logger, self.current_epoch, self.global_step, folder)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            raise ValueError("nothing to train: every parameter is frozen")
        return self.optimizer(params)

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


def log_confusion_matrix(matrix: torch.Tensor, label_names: Sequence[str], logger: Any, epoch: int, step: int,
                         folder: str | os.PathLike) -> str | None:
    """Log a confusion-matrix figure to ``logger`` when it takes images (W&B ``log_image``, TensorBoard
    ``add_figure``), else save ``<folder>/epoch=N.png``; returns the PNG path when one was written."""
    fig = plot_confusion_matrix(matrix, label_names, title=f"validation, epoch {epoch}")  # selects Agg first
    import matplotlib.pyplot as plt
    import numpy as np

    try:
        if logger is not None and hasattr(logger, "log_image"):
            fig.canvas.draw()
            image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
            logger.log_image(key="val_confusion_matrix", images=[image], step=step)
            return None
        experiment = getattr(logger, "experiment", None) if logger is not None else None
        if experiment is not None and hasattr(experiment, "add_figure"):
            experiment.add_figure("val_confusion_matrix", fig, global_step=step)
            return None
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / f"epoch={epoch}.png"
        fig.savefig(path, dpi=100)
        return str(path)
    finally:
        plt.close(fig)


def plot_confusion_matrix(matrix: torch.Tensor, label_names: Sequence[str], title: str = ""):
    """A matplotlib figure of a confusion matrix (rows: true label, columns: predicted), counts in the cells."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = matrix.cpu().numpy()
    size = max(3.0, 0.6 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(int(value)), ha="center", va="center", color="white" if value > threshold else "black")
    fig.tight_layout()
    return fig


def write_predictions(predictions: Sequence[Mapping[str, torch.Tensor]] | Mapping[str, torch.Tensor],
                      path: str | os.PathLike, label_names: Sequence[str], texts: Sequence[str] | None = None) -> str:
    """Write ``predict_step`` outputs (one dict per batch) as a TSV: ``index, label, confidence, p_<name>...[, text]``.

    Rows are sorted by the ``index`` the batches carry (input order). Returns the path written.
    """
    if isinstance(predictions, Mapping):
        predictions = [predictions]
    if not predictions:
        raise ValueError("no predictions to write")
    probs = torch.cat([p["probs"].detach().cpu() for p in predictions])
    if probs.shape[1] != len(label_names):
        raise ValueError(f"predictions have {probs.shape[1]} classes but {len(label_names)} label names were given")
    if all("index" in p for p in predictions):
        index = torch.cat([p["index"].detach().cpu() for p in predictions])
    else:
        index = torch.arange(len(probs))
    if texts is not None and len(texts) != len(probs):
        raise ValueError(f"{len(texts)} texts for {len(probs)} predictions")
    order = torch.argsort(index)
    path = os.fspath(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        header = ["index", "label", "confidence", *(f"p_{n}" for n in label_names)]
        handle.write("\t".join(header + (["text"] if texts is not None else [])) + "\n")
        for row in order.tolist():
            p = probs[row]
            label = int(p.argmax())
            fields = [str(int(index[row])), str(label_names[label]), f"{float(p[label]):.4f}",
                      *(f"{float(v):.4f}" for v in p)]
            if texts is not None:
                fields.append(texts[int(index[row])].replace("\t", " ").replace("\n", " "))
            handle.write("\t".join(fields) + "\n")
    return path


class TSVPredictionWriter(BasePredictionWriter):
    """Callback writing ``trainer.predict`` outputs with :func:`write_predictions` (texts from the data module's
    ``predict_texts`` when it has them). Single process."""

    def __init__(self, output_file: str = "predictions.tsv") -> None:
        super().__init__(write_interval="epoch")
        self.output_file = output_file

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if predictions and isinstance(predictions[0], list):  # several predict dataloaders
            predictions = predictions[0]
        datamodule = getattr(trainer, "datamodule", None)
        texts = getattr(datamodule, "predict_texts", None)
        write_predictions(predictions, self.output_file, pl_module.label_names, texts)
        rank_zero_info(f"wrote {self.output_file}")


# --- plain-Python recipe runner (the CLI does the same through LightningCLI) ------------------------------------------
def import_object(path: str) -> Any:
    """``"package.module.Name"`` -> the object."""
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"not a dotted path: {path!r}")
    return getattr(importlib.import_module(module), name)


def instantiate(spec: Any, callable_keys: Sequence[str] = ()) -> Any:
    """Build ``{class_path, init_args}`` specs recursively (LightningCLI's YAML shape). Values under a key in
    ``callable_keys`` (e.g. ``"optimizer"``) become ``functools.partial(cls, **init_args)`` instead of instances."""
    if isinstance(spec, Mapping) and "class_path" in spec:
        cls = import_object(spec["class_path"])
        kwargs = {k: instantiate(v, callable_keys) for k, v in (spec.get("init_args") or {}).items()}
        return cls(**kwargs)
    if isinstance(spec, Mapping):
        out = {}
        for key, value in spec.items():
            if key in callable_keys and isinstance(value, Mapping) and "class_path" in value:
                out[key] = functools.partial(import_object(value["class_path"]), **(value.get("init_args") or {}))
            elif key in callable_keys and isinstance(value, str):
                out[key] = import_object(value)
            else:
                out[key] = instantiate(value, callable_keys)
        return out
    if isinstance(spec, list):
        return [instantiate(v, callable_keys) for v in spec]
    return spec


def load_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a recipe YAML and apply ``key.sub=value`` overrides (values parsed as YAML)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not key=value")
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return config


def build_from_recipe(config: Mapping[str, Any]) -> tuple[L.LightningDataModule, ClassificationTask, dict]:
    """Instantiate the recipe's data module and task (linking ``vocab_size``/``num_classes``) and trainer kwargs."""
    config = copy.deepcopy(dict(config))
    if config.get("seed_everything") is not None:
        L.seed_everything(config["seed_everything"], workers=True)
    data = instantiate(config["data"])
    model_spec = config["model"]
    model_cls = import_object(model_spec["class_path"])
    init_args = instantiate(dict(model_spec.get("init_args") or {}), callable_keys=("optimizer",))
    init_args.update(vocab_size=data.vocab_size, num_classes=data.num_classes)
    task = model_cls(**init_args)
    trainer_kwargs = instantiate(dict(config.get("trainer") or {}))
    return data, task, trainer_kwargs


def fit_recipe(path: str | os.PathLike, overrides: Sequence[str] = (), test: bool = True) -> dict[str, Any]:
    """Train a recipe, then validate (and test, when there is a labelled test split) the best checkpoint.

    Returns the metrics, the checkpoint path and the wall time in seconds.
    """
    start = time.time()
    data, task, trainer_kwargs = build_from_recipe(load_recipe(path, overrides))
    trainer = L.Trainer(**trainer_kwargs)
    trainer.fit(task, datamodule=data)
    fit_seconds = time.time() - start
    ckpt = "best" if trainer.checkpoint_callback is not None and trainer.checkpoint_callback.best_model_path else None
    results: dict[str, Any] = {"recipe": str(path), "overrides": list(overrides), "fit_seconds": round(fit_seconds, 1),
                               "epochs": trainer.current_epoch, "checkpoint": ckpt and trainer.checkpoint_callback.
                               best_model_path}
    results.update(trainer.validate(task, datamodule=data, ckpt_path=ckpt, verbose=False)[0])
    if test and data.has_split("test"):
        results.update(trainer.test(task, datamodule=data, ckpt_path=ckpt, verbose=False)[0])
    results["wall_seconds"] = round(time.time() - start, 1)
    results["trainable_parameters"] = sum(p.numel() for p in task.parameters() if p.requires_grad)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m recurrentkit.tasks.classification RECIPE [--set key=value ...] [--json out.json]``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("recipe")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override, e.g. trainer.max_epochs=1 or data.init_args.preset=sst2-sentence")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (1 is fastest on a busy shared CPU)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = fit_recipe(args.recipe, args.set)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
