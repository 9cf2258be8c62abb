"""Non-monotonically triggered averaged SGD (NT-ASGD, Merity et al. 2018, "Regularizing and Optimizing LSTM
Language Models", section 3).

Train with SGD; once the validation metric has not improved on its best value from more than ``nonmono`` checks
ago (``value > min(history[:-nonmono])``), switch to averaged SGD: plain SGD (no momentum) whose iterates are
averaged from the switch on,

    w̄_n = (1 / n) Σ_{k=1..n} w_k,

and evaluate (validate, test, and keep at the end of training) with the averaged weights ``w̄``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn


class NTASGD(Callback):
    """Switch SGD -> averaged SGD when ``monitor`` stalls for ``nonmono`` validation checks.

    Args:
        monitor: logged validation metric to watch (lower is better).
        nonmono: the non-monotone interval ``n`` of the paper (AWD-LSTM: 5).
        lr: learning rate after the switch (``None``: the current optimizer's).
        weight_decay: weight decay after the switch (``None``: the current optimizer's, or 0).

    The averaged weights are swapped in for every validation (so the monitored metric, checkpoints saved at
    validation end and ``trainer.test`` after ``fit`` use them) and swapped out before the next training step. The
    raw weights, the average and the switch point are part of the callback's checkpoint state, so a run resumed
    with ``ckpt_path`` continues exactly. LR schedulers are dropped at the switch (the paper uses none after it).
    """

    def __init__(self, monitor: str = "val/loss", nonmono: int = 5, lr: float | None = None,
                 weight_decay: float | None = None) -> None:
        super().__init__()
        if nonmono < 1:
            raise ValueError(f"nonmono must be >= 1, got {nonmono}")
        self.monitor, self.nonmono, self.lr, self.weight_decay = monitor, int(nonmono), lr, weight_decay
        self.switched = False
        self.switch_step: int | None = None
        self.history: list[float] = []
        self.num_averaged = 0
        self.average: list[torch.Tensor] | None = None
        self.raw: list[torch.Tensor] | None = None
        self._last_step = -1

    # --- the rule ------------------------------------------------------------------------------------------------
    def should_switch(self, value: float) -> bool:
        """``True`` when ``value`` is worse than the best of the checks older than the last ``nonmono``."""
        return len(self.history) > self.nonmono and value > min(self.history[:-self.nonmono])

    @staticmethod
    def _params(pl_module: L.LightningModule) -> list[torch.nn.Parameter]:
        return list(pl_module.parameters())

    def _install_optimizer(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        old = trainer.optimizers[0] if trainer.optimizers else None
        group = old.param_groups[0] if old is not None else {}
        lr = self.lr if self.lr is not None else group.get("lr", 1.0)
        wd = self.weight_decay if self.weight_decay is not None else group.get("weight_decay", 0.0)
        self.lr, self.weight_decay = lr, wd
        trainer.strategy.optimizers = [torch.optim.SGD(self._params(pl_module), lr=lr, weight_decay=wd)]
        if trainer.lr_scheduler_configs:
            rank_zero_warn("NTASGD: dropping the LR scheduler(s) at the switch to averaged SGD")
            trainer.strategy.lr_scheduler_configs = []

    def _swap_in_average(self, pl_module: L.LightningModule) -> None:
        if self.average is None or self.raw is not None:
            return
        with torch.no_grad():
            params = self._params(pl_module)
            self.raw = [p.detach().clone() for p in params]
            for p, avg in zip(params, self.average):
                p.copy_(avg)

    def _restore_raw(self, pl_module: L.LightningModule) -> None:
        if self.raw is None:
            return
        with torch.no_grad():
            for p, raw in zip(self._params(pl_module), self.raw):
                p.copy_(raw.to(p.device))
        self.raw = None

    # --- hooks ---------------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.switched:  # resumed after the switch: the checkpoint's optimizer state is the averaged SGD's
            self._install_optimizer(trainer, pl_module)
        if self.average is not None:
            device = next(pl_module.parameters()).device
            self.average = [a.to(device) for a in self.average]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_raw(pl_module)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._restore_raw(pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self.switched or trainer.global_step == self._last_step:
            return
        self._last_step = trainer.global_step
        with torch.no_grad():
            params = self._params(pl_module)
            if self.average is None:
                self.average = [p.detach().clone() for p in params]
                self.num_averaged = 1
            else:
                self.num_averaged += 1
                for avg, p in zip(self.average, params):
                    avg.add_(p.detach() - avg, alpha=1.0 / self.num_averaged)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._swap_in_average(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if not self.switched and self.should_switch(value):
            self.switched = True
            self.switch_step = trainer.global_step
            self._last_step = trainer.global_step
            self._install_optimizer(trainer, pl_module)
            rank_zero_info(f"NTASGD: {self.monitor}={value:.4f} has not improved for {self.nonmono} checks; "
                           f"switching to averaged SGD (lr={self.lr}) at step {trainer.global_step}")
        self.history.append(value)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in_average(pl_module)  # the final model is the averaged one
        self.raw = None

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in_average(pl_module)

    # --- checkpoint state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"switched": self.switched, "switch_step": self.switch_step, "history": list(self.history),
                "num_averaged": self.num_averaged, "lr": self.lr, "weight_decay": self.weight_decay,
                "average": None if self.average is None else [a.cpu() for a in self.average],
                "raw": None if self.raw is None else [r.cpu() for r in self.raw], "last_step": self._last_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.switched = state_dict["switched"]
        self.switch_step = state_dict["switch_step"]
        self.history = list(state_dict["history"])
        self.num_averaged = state_dict["num_averaged"]
        self.lr, self.weight_decay = state_dict["lr"], state_dict["weight_decay"]
        self.average, self.raw = state_dict["average"], state_dict["raw"]
        self._last_step = state_dict.get("last_step", -1)


__all__ = ["NTASGD"]
