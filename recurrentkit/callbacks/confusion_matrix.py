"""Confusion-matrix figures: drawn with matplotlib, sent to a logger that takes images, else saved as PNG files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


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
            logger.log_image(key="val/confusion_matrix", images=[image], step=step)
            return None
        experiment = getattr(logger, "experiment", None) if logger is not None else None
        if experiment is not None and hasattr(experiment, "add_figure"):
            experiment.add_figure("val/confusion_matrix", fig, global_step=step)
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


__all__ = ["log_confusion_matrix", "plot_confusion_matrix"]
