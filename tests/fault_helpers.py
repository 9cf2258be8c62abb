"""Callbacks the fault-injection tests load into a training subprocess (``PYTHONPATH`` includes tests/)."""

from __future__ import annotations

import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class PauseMidStep(Callback):
    """At global step ``step``, between the forward pass and the backward pass (mid-step), write ``marker`` and
    wait up to ``seconds`` for the test to signal the process; stop waiting once a preemption signal is pending."""

    def __init__(self, step: int, marker: str, seconds: float = 30.0) -> None:
        self.step, self.marker, self.seconds = step, Path(marker), seconds

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if trainer.global_step != self.step:
            return
        self.marker.write_text(str(self.step))
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline:
            if any(getattr(c, "pending", None) for c in trainer.callbacks):
                return
            time.sleep(0.02)
