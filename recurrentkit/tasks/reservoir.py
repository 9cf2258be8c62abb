"""Echo-state network as a LightningModule, fitted in closed form: one pass over the data, solve, validate.

Run a recipe with the one command: ``recurrentkit fit -c recipes/reservoir/mackey-glass.yaml``.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor

from ..models.esn import EchoStateNetwork
from .base import Task
from .forecasting import ForecastingTask


class ReservoirTask(ForecastingTask):
    """Echo-state network (:class:`~recurrentkit.models.esn.EchoStateNetwork`: ``esn`` reservoir +
    :class:`~recurrentkit.nn.readout.RidgeReadout`).

    ``readout_training="ridge"`` (default): each training step runs the reservoir without gradients and adds the
    batch to the readout's ``XᵀX``/``XᵀY`` (float64); at the end of the pass the statistics are all-reduced over
    DDP ranks and the ridge system is solved, before validation. Use ``max_epochs: 1`` — a second epoch refits
    on the same data. ``readout_training="sgd"`` trains the same readout with ``optimizer`` instead.

    The reservoir and readout arguments (``hidden_size``, ``spectral_radius``, ``leak_rate``, ``input_scaling``,
    ``density``, ``input_density``, ``bias_scaling``, ``seed``, ``ridge``, ``input_to_readout``) are those of
    :class:`~recurrentkit.models.esn.EchoStateNetwork`, passed through ``**model_kwargs``.

    Args:
        input_size, output_size: features in and out (linked from the data module by the CLI).
        readout_training: ``"ridge"`` or ``"sgd"``.
        washout: steps at the start of each training sequence left out of the fit (and of the ``"sgd"`` loss).
        optimizer: ``params -> Optimizer`` for ``"sgd"`` (default Adam, lr 1e-3); unused by the ridge fit.
        lr_scheduler: ``optimizer -> scheduler`` for ``"sgd"``, or ``None``.
        generate_steps: closed-loop steps evaluated at validation.
        **model_kwargs: the arguments of :class:`~recurrentkit.models.esn.EchoStateNetwork`.

    Logged: ``train/rows`` (rows added to the statistics), then as :class:`ForecastingTask`.
    """

    def __init__(self, input_size: int = 1, output_size: int = 1, readout_training: str = "ridge",
                 washout: int = 0, optimizer: OptimizerCallable = torch.optim.Adam,
                 lr_scheduler: LRSchedulerCallable | None = None, generate_steps: int = 0,
                 **model_kwargs: Any) -> None:
        if readout_training not in ("ridge", "sgd"):
            raise ValueError(f"readout_training must be 'ridge' or 'sgd', got {readout_training!r}")
        # the base Task, not ForecastingTask.__init__: the network is an EchoStateNetwork, not a RecurrentRegressor
        Task.__init__(self, optimizer if readout_training == "sgd" else None, lr_scheduler)
        # given explicitly: Lightning reads a frame's arguments only from an __init__ that calls super()
        self.save_hyperparameters({"input_size": input_size, "output_size": output_size,
                                   "readout_training": readout_training, "washout": washout,
                                   "generate_steps": generate_steps, **model_kwargs})
        self.set_network(EchoStateNetwork(input_size, output_size, **model_kwargs), washout, generate_steps)
        self.readout_training = readout_training
        self.automatic_optimization = readout_training == "sgd"
        self._pending_solve = False
        self.fit_seconds: float | None = None

    # --- closed-form fit -------------------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        if self.readout_training == "ridge":
            self.model.head.reset_statistics()

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor | None:
        if self.readout_training == "sgd":
            return super().training_step(batch, batch_idx)
        x, y, mask = batch
        with torch.no_grad():
            states, _ = self.model.reservoir_states(x)
            rows = self.model.head.accumulate(states, y.transpose(0, 1), x.transpose(0, 1), mask.transpose(0, 1),
                                              washout=self.washout)
        self._pending_solve = True
        self.log("train/rows", float(rows), reduce_fx="sum", batch_size=x.shape[0])
        return None

    def solve_readout(self) -> None:
        """All-reduce the statistics (under DDP) and solve the ridge system."""
        start = time.perf_counter()
        self.model.head.solve()
        self._pending_solve = False
        self.fit_seconds = time.perf_counter() - start

    def on_validation_epoch_start(self) -> None:
        if self._pending_solve:
            self.solve_readout()

    def on_train_epoch_end(self) -> None:
        if self._pending_solve:
            self.solve_readout()


__all__ = ["ReservoirTask"]
