"""Checkpoint at the exact training position when the run is interrupted (Ctrl-C, SIGTERM, SLURM's requeue signal).

A signal can arrive anywhere, in the middle of a forward pass or of an optimizer step, where the weights, optimizer
and data position do not agree. So the handler only records the signal; the checkpoint is written at the next
step boundary (``on_train_batch_end``, the same point at which ``ModelCheckpoint(every_n_train_steps=...)`` saves,
which resumes bit for bit), then the process exits with status ``128 + signal number`` (130 for Ctrl-C, 143 for
SIGTERM). A second signal before that boundary is handed to the previous handler at once (a second Ctrl-C aborts).
"""

from __future__ import annotations

import io
import os
import random
import signal
import sys
import threading
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.trainer.states import TrainerFn, TrainerStatus


class Preempted(SystemExit):
    """The run was interrupted by a signal and checkpointed; ``code`` is ``128 + signum``."""


def rng_state() -> dict[str, Any]:
    """torch, CUDA, Python and NumPy generator states as plain containers (``weights_only``-loadable)."""
    import numpy as np

    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    import numpy as np

    torch.set_rng_state(state["torch"])
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]) if isinstance(python, list) else python)
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _signal(name: str) -> signal.Signals | None:
    return getattr(signal, name, None)


class PreemptionCheckpoint(Checkpoint):
    """On SIGINT, SIGTERM or SIGUSR1, save ``<dirpath>/<filename>.ckpt`` at the next step boundary and exit.

    The file is named ``last-stopped.ckpt`` in the ``ModelCheckpoint`` folder, so ``--ckpt_path last`` (which
    takes the newest ``last*.ckpt`` there) finds it, and a preempted job restarted with the same command and
    ``--ckpt_path last`` continues where it stopped. (It is deliberately not an ``OnExceptionCheckpoint``: with one
    of those, Lightning resumes *every* later ``fit`` in the folder from the last checkpoint, even without
    ``--ckpt_path``.) Being a ``Checkpoint``, Lightning runs it after all other callbacks, so their end-of-step
    work (NT-ASGD's average, say) is in the checkpoint. Under SLURM with auto-requeue, Lightning's own SIGUSR1 handler
    (which writes ``hpc_ckpt_N.ckpt`` and requeues the job) runs after this checkpoint, at the same step boundary.
    A checkpoint is written only for these signals, never for an error (a crashed step may be half-applied).
    The callback's own checkpoint state is the random number generators (torch, CUDA, Python, NumPy), so every
    checkpoint of a run that has it resumes with the same dropout masks.

    Args:
        dirpath: folder of the checkpoint (default: that of the trainer's ``ModelCheckpoint``, else
            ``<default_root_dir>/checkpoints``).
        filename: file name without ``.ckpt``.
        signals: names of the signals to catch.
        save_on_stop: also write the file when ``max_steps`` or ``max_time`` stops the run, with the position of
            its last step, so that ``--ckpt_path last`` with a larger limit continues exactly (Lightning's own
            checkpoints at such a stop are written after its epoch-end bookkeeping and resume as if the epoch had
            ended).
        enabled: set ``False`` to leave the signals to Lightning (``--preemption.enabled false``).
    """

    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | None = None, filename: str = "last-stopped",
                 signals: tuple[str, ...] = ("SIGINT", "SIGTERM", "SIGUSR1"), save_on_stop: bool = True,
                 enabled: bool = True) -> None:
        super().__init__()
        if not filename:
            raise ValueError("PreemptionCheckpoint: filename cannot be empty")
        self.dirpath, self.filename = dirpath or "", filename
        unknown = [name for name in signals if _signal(name) is None]
        if unknown:
            raise ValueError(f"PreemptionCheckpoint: unknown signal name(s) {unknown} on this platform")
        self._configured_dirpath = dirpath
        self.signals = tuple(signals)
        self.enabled, self.save_on_stop = bool(enabled), bool(save_on_stop)
        self.pending: int | None = None
        self._previous: dict[int, Any] = {}
        self._written: str | None = None
        self._final: bytes | None = None  # the checkpoint of the last step of a run stopped early

    @property
    def ckpt_path(self) -> str | None:
        return os.path.join(self.dirpath, self.filename + self.FILE_EXTENSION) if self.dirpath else None

    # --- where -----------------------------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._configured_dirpath:
            return
        from lightning.pytorch.callbacks import ModelCheckpoint

        first = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)), None)
        folder = getattr(first, "dirpath", None)
        self.dirpath = folder or os.path.join(trainer.default_root_dir, "checkpoints")

    # --- signals ---------------------------------------------------------------------------------------------------
    def _handle(self, signum: int, frame: Any) -> None:
        if self.pending is not None:  # a second signal: don't wait any longer
            previous = self._previous.get(signum, signal.SIG_DFL)
            self._restore()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signum)
            return
        self.pending = signum

    def _install(self) -> None:
        if not self.enabled or threading.current_thread() is not threading.main_thread():
            return
        for name in self.signals:
            signum = _signal(name)
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            if previous is not None:
                signal.signal(signum, previous)
        self._previous = {}

    # --- hooks -----------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.pending = None
        self._install()  # after Lightning's own handlers (registered just before training starts), which we wrap

    def _act(self, trainer: L.Trainer) -> None:
        pending = self.pending if self.pending is not None else 0
        if trainer.world_size > 1:  # every rank stops at the same step (one scalar all-reduce per step)
            flag = torch.tensor(float(pending), device=trainer.strategy.root_device)
            pending = int(trainer.strategy.reduce(flag, reduce_op="max").item())
        if not pending:
            return
        path = self.ckpt_path
        trainer.save_checkpoint(path)
        self._written = path
        name = signal.Signals(pending).name
        if trainer.is_global_zero:
            print(f"recurrentkit: received {name} at global step {trainer.global_step} "
                  f"(epoch {trainer.current_epoch}); checkpoint written to {path}. "
                  f"Resume: the same command with --ckpt_path last (or {path}).",
                  file=sys.stderr, flush=True)
        previous = self._previous.get(pending)
        self._restore()
        if pending == getattr(signal, "SIGUSR1", None) and callable(previous):
            previous(pending, None)  # Lightning's SLURM requeue handler, now at a step boundary
        raise Preempted(128 + pending)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if not self.enabled:
            return
        self._act(trainer)
        max_steps = trainer.max_steps if trainer.max_steps is not None else -1
        if self.save_on_stop and (trainer.should_stop or 0 <= max_steps <= trainer.global_step):
            # The last step of a run stopped by max_steps or max_time (Timer sets should_stop in its own
            # on_train_batch_end, which runs before this). Only here, at the step boundary, is the position exact:
            # a checkpoint written after Lightning's epoch-end bookkeeping resumes as if the epoch had finished.
            # Keep it in memory; it is written in on_train_end, after every later save, so it is the newest.
            buffer = io.BytesIO()
            torch.save(trainer._checkpoint_connector.dump_checkpoint(weights_only=False), buffer)
            self._final = buffer.getvalue()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        try:
            if self.enabled:
                self._act(trainer)  # a signal during the last validation: the run is complete, checkpoint anyway
            if self.enabled and self._final is not None:
                path = self.ckpt_path
                if trainer.is_global_zero:
                    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                    with open(path + ".tmp", "wb") as handle:
                        handle.write(self._final)
                    os.replace(path + ".tmp", path)
                trainer.strategy.barrier("PreemptionCheckpoint.on_train_end")
                self._written, self._final = path, None
        finally:
            self._restore()

    # --- the random number generators travel with every checkpoint (dropout masks continue exactly) -------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("rng") is not None:
            set_rng_state(state_dict["rng"])

    def on_exception(self, trainer: L.Trainer, *args: Any, **kwargs: Any) -> None:
        self._restore()  # the checkpoint, if any, was written at the step boundary; never mid-step

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()
        # a fit that ran to completion supersedes an older interrupted checkpoint
        completed = stage == TrainerFn.FITTING and trainer.state.status != TrainerStatus.INTERRUPTED
        path = self.ckpt_path
        if completed and path and self._written is None and os.path.isfile(path) and trainer.is_global_zero:
            os.remove(path)


__all__ = ["Preempted", "PreemptionCheckpoint"]
