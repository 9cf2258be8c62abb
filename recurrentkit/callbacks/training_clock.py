"""``TrainingClock``: training wall time summed over every session of a run, kept in the checkpoint."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.callbacks import Callback


class TrainingClock(Callback):
    """Counts training wall time (``trainer.fit``, validation included) across interruptions.

    Its count is saved with each checkpoint and restored on ``fit(ckpt_path=...)``, so a run resumed from its last
    checkpoint reports the time of all its sessions: ``elapsed_s = restored + (now - start of this session)``. Time
    spent after the last checkpoint of an interrupted session is not counted (it is trained again).
    """

    def __init__(self) -> None:
        self.previous_s = 0.0
        self._start: float | None = None

    @property
    def elapsed_s(self) -> float:
        """Seconds of training so far, over every session."""
        return self.previous_s + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = time.perf_counter()

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.previous_s, self._start = self.elapsed_s, None

    def state_dict(self) -> dict[str, float]:
        return {"elapsed_s": self.elapsed_s}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous_s = float(state_dict["elapsed_s"])
