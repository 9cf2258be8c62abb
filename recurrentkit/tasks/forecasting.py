"""Sequence regression and forecasting: one-step prediction, closed-loop generation, RMSE / NRMSE / R².

Metrics (torchmetrics, over every scored step of the split, all outputs pooled for RMSE/NRMSE):

* ``RMSE = sqrt(mean((ŷ - y)²))``
* ``NRMSE = RMSE / std(y)`` with the *population* standard deviation of the targets of that split
  (``torchmetrics.NormalizedRootMeanSquaredError(normalization="std")``)
* ``R² = 1 - Σ(ŷ - y)² / Σ(y - ȳ)²`` (averaged uniformly over outputs)
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics import MeanSquaredError, MetricCollection, NormalizedRootMeanSquaredError, R2Score

from ..nn.recurrent import Recurrent


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


class ForecastingTask(L.LightningModule):
    """Sequence regression with any registered cell, trained by SGD (Adam) on the masked MSE.

    Batches are ``(x [B, T, I], y [B, T, O], mask [B, T])`` (see :mod:`recurrentkit.data.timeseries`).
    Validation and test log ``rmse``, ``nrmse`` and ``r2``; with ``generate_steps > 0`` validation also runs the
    network closed-loop from the first scored step and logs ``val/gen_rmse`` over ``generate_steps`` steps.

    Args:
        cell: registered cell name (``"leaky"``, ``"lstm"``, ...).
        input_size, output_size, hidden_size, num_layers: network shape.
        cell_kwargs: extra keyword arguments of the cell (e.g. ``{"alpha": 0.7}``).
        lr, weight_decay: Adam.
        washout: leading steps of each training window not scored by the loss.
        generate_steps: closed-loop steps evaluated at validation (needs ``input_size == output_size``).
    """

    def __init__(self, cell: str = "lstm", input_size: int = 1, output_size: int = 1, hidden_size: int = 64,
                 num_layers: int = 1, cell_kwargs: dict[str, Any] | None = None, lr: float = 1e-3,
                 weight_decay: float = 0.0, washout: int = 0, generate_steps: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.lr, self.weight_decay, self.washout, self.generate_steps = lr, weight_decay, washout, generate_steps
        self.build(cell, input_size, output_size, hidden_size, num_layers, dict(cell_kwargs or {}))
        self.val_metrics = forecast_metrics("val/")
        self.test_metrics = forecast_metrics("test/")

    def build(self, cell: str, input_size: int, output_size: int, hidden_size: int, num_layers: int,
              cell_kwargs: dict[str, Any]) -> None:
        self.rnn = Recurrent(cell, input_size, hidden_size, num_layers=num_layers, batch_first=True, **cell_kwargs)
        self.head = nn.Linear(self.rnn.output_size, output_size)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """``x [B, T, I] -> (predictions [B, T, O], state)``."""
        hidden, state = self.rnn(x, state)
        return self.head(hidden), state

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

    def _evaluate(self, batch: tuple[Tensor, Tensor, Tensor], metrics: MetricCollection) -> Tensor:
        x, y, mask = batch
        preds, _ = self(x)
        metrics.update(*scored(preds, y, mask))
        self.log_dict(metrics, batch_size=x.shape[0])
        return preds

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_metrics)
        if self.generate_steps:
            x, y, mask = batch
            first = int(mask[0].nonzero()[0])
            steps = min(self.generate_steps, x.shape[1] - first)
            generated = closed_loop(self, x[:, :first + 1], steps)
            rmse = torch.sqrt(F.mse_loss(generated.float(), y[:, first:first + steps].float()))
            self.log("val/gen_rmse", rmse, batch_size=x.shape[0])

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metrics)

    @torch.no_grad()
    def generate(self, warmup: Tensor, steps: int) -> Tensor:
        """Closed-loop forecast of ``steps`` steps after ``warmup [B, T, I]`` (see :func:`closed_loop`)."""
        return closed_loop(self, warmup, steps)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
