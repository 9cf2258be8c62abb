"""Write every optimizer step's training loss to a text file, exactly (for checking that a resumed run matches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class LossTrace(Callback):
    """Append ``<global_step> <epoch> <loss>`` per training batch to ``path`` (the loss as ``float.hex``, so two files
    compare bit for bit). A resumed run appends to the same file, so ``diff`` of an interrupted-and-resumed run's
    trace against an uninterrupted one's shows any difference; lines of steps replayed after a crash appear twice and
    :func:`read_loss_trace` keeps the last.

    Args:
        path: the trace file (created with its folders; appended to).
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = Path(path)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or not trainer.is_global_zero:
            return
        value = float(loss.detach().float().cpu()) if isinstance(loss, torch.Tensor) else float(loss)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(f"{trainer.global_step} {trainer.current_epoch} {value.hex()}\n")


def read_loss_trace(path: str | Path) -> dict[int, tuple[int, float]]:
    """``{global_step: (epoch, loss)}`` from a :class:`LossTrace` file (a step written twice, by a run that
    crashed after it and a resumed one that replayed it, keeps its last line)."""
    trace: dict[int, tuple[int, float]] = {}
    for line in Path(path).read_text().split("\n")[:-1]:  # a last line without "\n" was cut short by a kill
        step, epoch, value = line.split()
        trace[int(step)] = (int(epoch), float.fromhex(value))
    return trace


__all__ = ["LossTrace", "read_loss_trace"]
