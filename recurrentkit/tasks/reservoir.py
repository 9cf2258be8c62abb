"""Echo-state network as a LightningModule, fitted in closed form: one pass over the data, solve, validate.

Run a recipe without the CLI::

    python -m recurrentkit.tasks.reservoir recipes/reservoir/mackey-glass.yaml
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from ..nn.readout import RidgeReadout
from ..nn.recurrent import Recurrent
from .forecasting import ForecastingTask


class ReservoirTask(ForecastingTask):
    """Echo-state network (``esn`` reservoir + :class:`~recurrentkit.nn.readout.RidgeReadout`).

    ``readout_training="ridge"`` (default): each training step runs the reservoir without gradients and adds the
    batch to the readout's ``XᵀX``/``XᵀY`` (float64); at the end of the pass the statistics are all-reduced over
    DDP ranks and the ridge system is solved, before validation. Use ``max_epochs: 1`` — a second epoch refits
    on the same data. ``readout_training="sgd"`` trains the same readout by Adam instead.

    Args:
        input_size, output_size: features in and out.
        hidden_size: reservoir units.
        spectral_radius, leak_rate, input_scaling, density, input_density, bias_scaling, seed: the reservoir
            (see :class:`~recurrentkit.cells.esn.ESNCell`).
        ridge: the ridge ``λ``.
        washout: steps at the start of each training sequence left out of the fit.
        input_to_readout: the readout also sees the input (``y = W [h; x] + b``).
        readout_training: ``"ridge"`` or ``"sgd"``.
        lr: Adam learning rate for ``"sgd"``.
        generate_steps: closed-loop steps evaluated at validation.
    """

    def __init__(self, input_size: int = 1, output_size: int = 1, hidden_size: int = 100,
                 spectral_radius: float = 0.9, leak_rate: float = 1.0, input_scaling: float = 1.0,
                 density: float = 0.1, input_density: float = 0.1, bias_scaling: float = 0.0, seed: int = 0,
                 ridge: float = 1e-6, washout: int = 0, input_to_readout: bool = False,
                 readout_training: str = "ridge", lr: float = 1e-3, generate_steps: int = 0) -> None:
        if readout_training not in ("ridge", "sgd"):
            raise ValueError(f"readout_training must be 'ridge' or 'sgd', got {readout_training!r}")
        self._esn = dict(spectral_radius=spectral_radius, leak_rate=leak_rate, input_scaling=input_scaling,
                         density=density, input_density=input_density, bias_scaling=bias_scaling, seed=seed)
        self._readout = dict(ridge=ridge, washout=washout, input_to_readout=input_to_readout)
        super().__init__(cell="esn", input_size=input_size, output_size=output_size, hidden_size=hidden_size,
                         lr=lr, washout=washout, generate_steps=generate_steps)
        self.save_hyperparameters()
        self.readout_training = readout_training
        self.automatic_optimization = readout_training == "sgd"
        self._pending_solve = False

    def build(self, cell: str, input_size: int, output_size: int, hidden_size: int, num_layers: int,
              cell_kwargs: dict[str, Any]) -> None:
        self.rnn = Recurrent("esn", input_size, hidden_size, **self._esn)
        self.head = RidgeReadout(hidden_size, output_size, ridge=self._readout["ridge"],
                                 washout=self._readout["washout"],
                                 input_features=input_size if self._readout["input_to_readout"] else 0)

    def reservoir_states(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """``x [B, T, I] -> (states [T, B, H], final state)``, time-major, without gradients to the reservoir."""
        return self.rnn(x.transpose(0, 1), state)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        states, state = self.reservoir_states(x, state)
        return self.head(states, x.transpose(0, 1)).transpose(0, 1), state

    # --- closed-form fit -------------------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        if self.readout_training == "ridge":
            self.head.reset_statistics()

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor | None:
        if self.readout_training == "sgd":
            return super().training_step(batch, batch_idx)
        x, y, mask = batch
        with torch.no_grad():
            states, _ = self.reservoir_states(x)
            rows = self.head.accumulate(states, y.transpose(0, 1), x.transpose(0, 1), mask.transpose(0, 1))
        self._pending_solve = True
        self.log("train/rows", float(rows), reduce_fx="sum", batch_size=x.shape[0])
        return None

    def solve_readout(self) -> None:
        """All-reduce the statistics (under DDP) and solve the ridge system."""
        start = time.perf_counter()
        self.head.solve()
        self._pending_solve = False
        self.fit_seconds = time.perf_counter() - start

    def on_validation_epoch_start(self) -> None:
        if self._pending_solve:
            self.solve_readout()

    def on_train_epoch_end(self) -> None:
        if self._pending_solve:
            self.solve_readout()

    def configure_optimizers(self) -> torch.optim.Optimizer | None:
        if self.readout_training == "sgd":
            return torch.optim.Adam(self.head.parameters(), lr=self.lr)
        return None


# --- running a recipe without the CLI -----------------------------------------------------------------------------
def instantiate(spec: dict[str, Any]) -> Any:
    """Build ``{"class_path": "pkg.mod.Class", "init_args": {...}}``."""
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise ValueError(f"expected a mapping with 'class_path' (and 'init_args'), got {spec!r}")
    module_name, _, name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), name)
    return cls(**(spec.get("init_args") or {}))


def run_recipe(path: str | Path, trainer_overrides: dict[str, Any] | None = None, test: bool = False
               ) -> dict[str, float]:
    """Fit the ``model``/``data``/``trainer`` of a recipe YAML and return the validation (and test) metrics."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    config = yaml.safe_load(path.read_text())
    if "seed_everything" in config:
        L.seed_everything(config["seed_everything"], verbose=False)
    model, data = instantiate(config["model"]), instantiate(config["data"])
    trainer_args = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                    "enable_model_summary": False, **(config.get("trainer") or {}), **(trainer_overrides or {})}
    trainer = L.Trainer(**trainer_args)
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["fit_seconds_total"] = time.perf_counter() - start
    if getattr(model, "fit_seconds", None) is not None:
        metrics["ridge_solve_seconds"] = model.fit_seconds
    if test:
        for result in trainer.test(model, datamodule=data, verbose=False):
            metrics.update({k: float(v) for k, v in result.items()})
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fit a reservoir/forecasting recipe and print its metrics.")
    parser.add_argument("recipe", help="a YAML file under recipes/reservoir/")
    parser.add_argument("--test", action="store_true", help="also run the test split")
    parser.add_argument("--threads", type=int, default=None, help="torch (and the ESN's OpenBLAS) CPU threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps(run_recipe(args.recipe, test=args.test), indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
