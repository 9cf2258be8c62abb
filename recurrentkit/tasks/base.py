"""``Task``: what every LightningModule in :mod:`recurrentkit.tasks` shares, so all tasks follow one set of conventions.

* **Model configuration once.** A task names its model class and forwards the model's arguments to it
  (``def __init__(self, vocab_size, ..., optimizer=..., **model_kwargs)`` then ``RNNLanguageModel(vocab_size,
  **model_kwargs)``). LightningCLI (jsonargparse) resolves the forwarded ``**model_kwargs`` into the model's own
  signature, so recipes keep flat keys (``--model.init_args.hidden_size``) and ``--help`` lists every model option.
* **Optimizer and scheduler.** ``optimizer: OptimizerCallable`` and ``lr_scheduler: LRSchedulerCallable | None``
  (Lightning's own types). In YAML both are ``class_path``/``init_args`` pairs; in Python any ``params ->
  Optimizer`` and ``optimizer -> scheduler`` callables. Only parameters that require gradients reach the optimizer.
  Schedulers step once per epoch; a ``ReduceLROnPlateau`` watches its own ``monitor`` when it has one
  (``lightning.pytorch.cli.ReduceLROnPlateau``), else the task's :attr:`Task.monitor`.
* **Metric names** are ``stage/metric``: ``train/loss``, ``val/loss``, ``val/acc``, ``test/ppl``, ...
* **Checkpoint extras** (what a task needs besides its weights: vocabulary, tokenizer, label names, carried state)
  live in one dict, ``checkpoint["recurrentkit"]``, written by :meth:`Task.checkpoint_extras` and read back by
  :meth:`Task.load_checkpoint_extras`. Values are plain containers and tensors, so checkpoints load with
  ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

CHECKPOINT_KEY = "recurrentkit"
STAGES = ("train", "val", "test")


def sgd(params: Iterable[torch.nn.Parameter], lr: float = 1.0) -> torch.optim.Optimizer:
    """Plain SGD with learning rate 1 (Zaremba et al. 2014): the language model's default optimizer."""
    return torch.optim.SGD(params, lr=lr)


def text_extras(vocab: Any, tokenizer: Any) -> dict[str, Any]:
    """The ``vocab`` and ``tokenizer`` checkpoint extras (``Vocab.state_dict()``, the tokenizer's ``config()``)."""
    extras: dict[str, Any] = {}
    if vocab is not None:
        extras["vocab"] = vocab.state_dict()
    if tokenizer is not None and hasattr(tokenizer, "config"):
        extras["tokenizer"] = tokenizer.config()
    return extras


def load_text_extras(extras: dict[str, Any]) -> tuple[Any, Any]:
    """``(Vocab, tokenizer)`` rebuilt from :func:`text_extras` (``None`` for what ``extras`` lacks)."""
    from ..data.tokenizers import build_tokenizer
    from ..data.vocab import Vocab

    vocab = Vocab.from_state_dict(extras["vocab"]) if extras.get("vocab") is not None else None
    tokenizer = build_tokenizer(extras["tokenizer"]) if extras.get("tokenizer") is not None else None
    return vocab, tokenizer


class Task(L.LightningModule):
    """Base of the recurrentkit tasks: optimizer/scheduler wiring, trainable parameters and checkpoint extras.

    Args:
        optimizer: ``params -> Optimizer`` (``None``: the task optimizes itself, e.g. a closed-form fit).
        lr_scheduler: ``optimizer -> scheduler`` or ``None``; stepped every epoch.
    """

    monitor: ClassVar[str] = "val/loss"  # what a ReduceLROnPlateau watches unless it names its own ``monitor``

    def __init__(self, optimizer: OptimizerCallable | None = None,
                 lr_scheduler: LRSchedulerCallable | None = None) -> None:
        super().__init__()
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler

    @property
    def datamodule(self) -> Any:
        """The trainer's data module, or ``None`` (no trainer attached, or plain dataloaders)."""
        return getattr(self.trainer, "datamodule", None) if self._trainer is not None else None

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The parameters the optimizer updates (frozen ones, e.g. a fixed embedding, are left out)."""
        return [p for p in self.parameters() if p.requires_grad]

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            return None
        params = self.trainable_parameters()
        if not params:
            raise ValueError(f"{type(self).__name__}: nothing to train, every parameter is frozen")
        optimizer = self.optimizer_factory(params)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        config: dict[str, Any] = {"scheduler": scheduler, "interval": "epoch"}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            config["monitor"] = getattr(scheduler, "monitor", None) or self.monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    # --- checkpoint extras -------------------------------------------------------------------------------------
    def checkpoint_extras(self) -> dict[str, Any]:
        """What the task saves beside its weights, by name (subclasses extend the parent's dict)."""
        return {}

    def load_checkpoint_extras(self, extras: dict[str, Any]) -> None:
        """Restore what :meth:`checkpoint_extras` saved (``extras`` may lack keys an older checkpoint did not
        have)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        extras = self.checkpoint_extras()
        if extras:
            checkpoint[CHECKPOINT_KEY] = extras

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.load_checkpoint_extras(dict(checkpoint.get(CHECKPOINT_KEY) or {}))


__all__ = ["CHECKPOINT_KEY", "STAGES", "Task", "load_text_extras", "sgd", "text_extras"]
