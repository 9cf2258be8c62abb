"""Classifier predictions as a TSV file: :func:`write_predictions` and the :class:`TSVPredictionWriter` callback."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info


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


__all__ = ["TSVPredictionWriter", "write_predictions"]
