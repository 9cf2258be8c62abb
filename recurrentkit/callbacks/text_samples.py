"""Log a generated text sample at the end of each validation (printed, and sent to loggers that take text)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn


class TextSampleLogger(Callback):
    """Generate ``max_new_tokens`` tokens from ``prompt`` with the task's ``generate`` after validation.

    The sample is printed (rank 0) and logged to every logger that can take text: ``log_text`` (W&B: a table
    with columns epoch, step, prompt, text) or a TensorBoard ``add_text``. A failing logger never stops training.
    The task needs a vocabulary (from the data module or ``attach_vocabulary``); without one nothing is generated.

    Args:
        prompt: text to continue (word models: a few words; char models: e.g. ``"\\n"`` or ``"ROMEO:"``).
        max_new_tokens, temperature, top_k: passed to ``generate``.
        seed: sampling seed (plus the epoch, so samples differ between epochs but are reproducible); the
            global RNG is not touched, so training is unaffected.
        every_n_epochs: generate every n-th validation epoch.
        print_sample: print the sample to stdout.
    """

    def __init__(self, prompt: str = "\n", max_new_tokens: int = 200, temperature: float = 0.8,
                 top_k: int | None = None, seed: int = 0, every_n_epochs: int = 1, print_sample: bool = True,
                 key: str = "val/samples") -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.prompt, self.max_new_tokens, self.temperature, self.top_k = prompt, max_new_tokens, temperature, top_k
        self.seed, self.every_n_epochs, self.print_sample, self.key = seed, every_n_epochs, print_sample, key
        self.samples: list[dict[str, Any]] = []
        self._warned = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return
        if getattr(pl_module, "vocab", None) is None or not hasattr(pl_module, "generate"):
            if not self._warned:
                rank_zero_warn("TextSampleLogger: the task has no vocabulary/generate(); no sample is logged")
                self._warned = True
            return
        text = pl_module.generate(self.prompt, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                                  top_k=self.top_k, seed=self.seed + trainer.current_epoch)
        record = {"epoch": trainer.current_epoch, "step": trainer.global_step, "prompt": self.prompt, "text": text}
        self.samples.append(record)
        if not trainer.is_global_zero:
            return
        if self.print_sample:
            print(f"\n--- sample (epoch {record['epoch']}, step {record['step']}) ---\n{text}\n---", flush=True)
        for logger in trainer.loggers:
            try:
                if hasattr(logger, "log_text"):
                    logger.log_text(key=self.key, columns=list(record), data=[list(record.values())],
                                    step=trainer.global_step)
                elif hasattr(getattr(logger, "experiment", None), "add_text"):
                    logger.experiment.add_text(self.key, text, trainer.global_step)
            except Exception as error:  # a logger problem must never end a training run
                rank_zero_warn(f"TextSampleLogger: {type(logger).__name__} could not log the sample: {error}")


__all__ = ["TextSampleLogger"]
