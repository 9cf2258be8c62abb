"""Sequence regression and forecasting: one-step prediction, closed-loop generation, RMSE / NRMSE / R².

Metrics (torchmetrics, over every scored step of the split, all outputs pooled for RMSE/NRMSE):

* ``RMSE = sqrt(mean((ŷ - y)²))``
* ``NRMSE = RMSE / std(y)`` with the *population* standard deviation of the targets of that split
  (``torchmetrics.NormalizedRootMeanSquaredError(normalization="std")``)
* ``R² = 1 - Σ(ŷ - y)² / Σ(y - ȳ)²`` (averaged uniformly over outputs)
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanSquaredError, MetricCollection, NormalizedRootMeanSquaredError, R2Score

from ..models.regressor import RecurrentRegressor
from .base import Task


def forecast_metrics(prefix: str = "") -> MetricCollection:
    """``{prefix}rmse``, ``{prefix}nrmse`` (RMSE / population std of the targets) and ``{prefix}r2``."""
    return MetricCollection({"rmse": MeanSquaredError(squared=False),
                             "nrmse": NormalizedRootMeanSquaredError(normalization="std"),
                             "r2": R2Score()}, prefix=prefix)


def scored(preds: Tensor, targets: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """The scored rows ``[N]`` (one output) or ``[N, O]`` of batch-first ``[B, T, O]`` predictions."""
    if mask is not None:
        preds, targets = preds[mask], targets[mask]
    preds, targets = preds.reshape(-1, preds.shape[-1]), targets.reshape(-1, targets.shape[-1])
    if preds.shape[-1] == 1:
        preds, targets = preds.squeeze(-1), targets.squeeze(-1)
    return preds.float(), targets.float()


def closed_loop(model: nn.Module, warmup: Tensor, steps: int, state: Any = None) -> Tensor:
    """Free-running generation: run ``model`` over ``warmup [B, T, I]``, then feed each output back as the next
    input for ``steps`` steps. ``model(x, state) -> (y [B, T, O], state)`` with ``O == I``. Returns ``[B, steps, O]``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    preds, state = model(warmup, state)
    if preds.shape[-1] != warmup.shape[-1]:
        raise ValueError(f"closed-loop generation feeds outputs back as inputs: output size {preds.shape[-1]} must "
                         f"equal input size {warmup.shape[-1]}")
    y = preds[:, -1:]
    outputs = []
    for _ in range(steps):
        outputs.append(y)
        y, state = model(y, state)
    return torch.cat(outputs, dim=1) if outputs else preds[:, :0]


class ForecastingTask(Task):
    """Sequence regression with any registered cell, trained by gradient descent on the masked MSE.

    Batches are ``(x [B, T, I], y [B, T, O], mask [B, T])`` (see :mod:`recurrentkit.data.timeseries`).
    Validation and test log ``rmse``, ``nrmse`` and ``r2``; with ``generate_steps > 0`` validation also runs the
    network closed-loop from the first scored step and logs ``val/gen_rmse`` over ``generate_steps`` steps.

    The model's arguments (``cell``, ``hidden_size``, ``num_layers``, ``cell_kwargs``) are those of
    :class:`~recurrentkit.models.regressor.RecurrentRegressor`, passed through ``**model_kwargs``.

    Args:
        input_size, output_size: features in and out (the CLI links them from the data module).
        optimizer: ``params -> Optimizer`` (default Adam, lr 1e-3; in YAML a ``class_path``/``init_args`` pair).
        lr_scheduler: ``optimizer -> scheduler`` or ``None`` (a ``ReduceLROnPlateau`` watches ``val/rmse``).
        washout: leading steps of each training window not scored by the loss.
        generate_steps: closed-loop steps evaluated at validation (needs ``input_size == output_size``).
        **model_kwargs: the arguments of :class:`~recurrentkit.models.regressor.RecurrentRegressor`.

    Logged: ``train/loss``, ``val/rmse``, ``val/nrmse``, ``val/r2`` (``val/gen_rmse``), ``test/rmse``,
    ``test/nrmse``, ``test/r2``.
    """

    monitor = "val/rmse"

    def __init__(self, input_size: int = 1, output_size: int = 1, optimizer: OptimizerCallable = torch.optim.Adam,
                 lr_scheduler: LRSchedulerCallable | None = None, washout: int = 0, generate_steps: int = 0,
                 **model_kwargs: Any) -> None:
        super().__init__(optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.set_network(RecurrentRegressor(input_size, output_size, **model_kwargs), washout, generate_steps)

    def set_network(self, model: nn.Module, washout: int, generate_steps: int) -> None:
        """Adopt ``model`` (``x [B, T, I] -> (y [B, T, O], state)``) and the training/validation settings."""
        if washout < 0 or generate_steps < 0:
            raise ValueError(f"washout and generate_steps must be >= 0, got {washout}, {generate_steps}")
        self.model = model
        self.washout, self.generate_steps = int(washout), int(generate_steps)
        self.val_metrics, self.test_metrics = forecast_metrics("val/"), forecast_metrics("test/")

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """``x [B, T, I] -> (predictions [B, T, O], state)``."""
        return self.model(x, state)

    def _train_mask(self, mask: Tensor) -> Tensor:
        if self.washout:
            mask = mask.clone()
            mask[:, :self.washout] = False
        return mask

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y, mask = batch
        preds, _ = self(x)
        mask = self._train_mask(mask)
        loss = F.mse_loss(preds[mask], y[mask])
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor, Tensor], stage: str) -> Tensor:
        x, y, mask = batch
        preds, _ = self(x)
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(*scored(preds, y, mask))
        self.log_dict(metrics, batch_size=x.shape[0])
        return preds

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")
        if self.generate_steps:
            x, y, mask = batch
            first = int(mask[0].nonzero()[0])
            steps = min(self.generate_steps, x.shape[1] - first)
            generated = closed_loop(self, x[:, :first + 1], steps)
            rmse = torch.sqrt(F.mse_loss(generated.float(), y[:, first:first + steps].float()))
            self.log("val/gen_rmse", rmse, batch_size=x.shape[0])

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    @torch.no_grad()
    def generate(self, warmup: Tensor, steps: int) -> Tensor:
        """Closed-loop forecast of ``steps`` steps after ``warmup [B, T, I]`` (see :func:`closed_loop`)."""
        return closed_loop(self, warmup, steps)


__all__ = ["ForecastingTask", "closed_loop", "forecast_metrics", "scored"]
