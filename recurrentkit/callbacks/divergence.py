"""Stop a run the moment it diverges: a non-finite training loss, or NaN in a validation/test metric.

Without this, a NaN loss trains on silently (every later step is NaN too), "best" checkpoints of a broken model are
written and the process exits 0. The guard raises :class:`DivergenceError` instead, before the optimizer step and
before any checkpoint callback runs, so the weights on disk stay those of the last good checkpoint.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from ..errors import UserError


class DivergenceError(UserError, RuntimeError):
    """Training or evaluation produced a non-finite value; the run was stopped."""


def newest_checkpoint(trainer: L.Trainer) -> str | None:
    """The most recently written ``*.ckpt`` in the folders of the trainer's checkpoint callbacks, or ``None``."""
    folders = set()
    for callback in trainer.checkpoint_callbacks:
        folder = getattr(callback, "dirpath", None)
        if folder:
            folders.add(Path(folder))
    found = [p for folder in folders if folder.is_dir() for p in folder.glob("*.ckpt") if p.is_file()]
    return str(max(found, key=os.path.getmtime)) if found else None


class DivergenceGuard(Callback):
    """Raise :class:`DivergenceError` on a non-finite training loss or a NaN evaluation metric.

    The training loss is checked in ``on_before_backward``: no backward pass and no optimizer step happen with it,
    and checkpoint callbacks (which Lightning always runs after the others) never see the diverged state. The
    message names the step, the value and the newest checkpoint on disk. Validation and test metrics (logged names
    starting with ``val`` or ``test``) are checked when their loop ends; they are NaN only when some batch was.
    Under DDP the decision is all-reduced, so every rank stops at the same step.

    Args:
        enabled: set ``False`` to train on regardless (``--divergence.enabled false`` on the command line).
        check_eval: also refuse NaN validation/test metrics.
    """

    def __init__(self, enabled: bool = True, check_eval: bool = True) -> None:
        super().__init__()
        self.enabled, self.check_eval = bool(enabled), bool(check_eval)

    def _stop(self, trainer: L.Trainer, what: str, hint: str) -> None:
        checkpoint = newest_checkpoint(trainer)
        kept = (f"The newest checkpoint, {checkpoint}, was written before this and is left untouched."
                if checkpoint else "No checkpoint had been written.")
        batch = trainer.fit_loop.epoch_loop.batch_idx
        position = f"global step {trainer.global_step} (epoch {trainer.current_epoch}, batch {batch})"
        if not trainer.training:
            position = f"global step {trainer.global_step}"
        raise DivergenceError(f"{what} at {position}; "
                              f"the run is stopped. {kept} {hint} To train on anyway, pass "
                              f"--divergence.enabled false (Python: DivergenceGuard(enabled=False)).")

    def _any(self, trainer: L.Trainer, bad: bool) -> bool:
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(bad, all=False))
        return bad

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        if not self.enabled:
            return
        value = float(loss.detach().float().cpu())
        if self._any(trainer, not math.isfinite(value)):
            self._stop(trainer, f"the training loss is {value} (non-finite)",
                       "Lower the learning rate, clip gradients (--trainer.gradient_clip_val) or check the data.")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        # tasks with manual optimization never reach on_before_backward through Lightning's loop
        if not self.enabled or pl_module.automatic_optimization:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            value = float(loss.detach().float().cpu())
            if self._any(trainer, not math.isfinite(value)):
                self._stop(trainer, f"the training loss is {value} (non-finite)", "Check the learning rate and data.")

    def _check_metrics(self, trainer: L.Trainer, prefixes: tuple[str, ...]) -> None:
        if not (self.enabled and self.check_eval):
            return
        bad = sorted(name for name, value in trainer.callback_metrics.items()
                     if name.startswith(prefixes) and isinstance(value, torch.Tensor) and value.numel() == 1
                     and bool(torch.isnan(value.detach().float()).item()))
        if self._any(trainer, bool(bad)):
            names = ", ".join(bad) or "a metric on another rank"
            verb = "are" if len(bad) > 1 else "is"
            self._stop(trainer, f"{names} {verb} NaN (some evaluation batch gave a NaN loss; it is reported, not "
                       "dropped)", "The weights may already be non-finite.")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_metrics(trainer, ("val",))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._check_metrics(trainer, ("test",))


__all__ = ["DivergenceError", "DivergenceGuard", "newest_checkpoint"]
