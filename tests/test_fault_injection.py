"""Fault injection: a training subprocess (recipes/debug/tiny-lm.yaml) is killed at a random step after a
checkpoint, resumed with ``--ckpt_path last``, and must end bit-identical to an uninterrupted run: the same
per-step training losses (and epochs) and the same final weights.

SIGKILL is a crash between checkpoints (nothing can be saved: the run resumes from the newest periodic checkpoint
and replays the lost steps); SIGTERM is a preemption (the checkpoint is written at the step boundary after the
signal, the process exits with 143, and the resume starts exactly there).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from recurrentkit.callbacks.loss_trace import read_loss_trace

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "debug" / "tiny-lm.yaml"
MAX_STEPS, EVERY = 40, 10


def _command(workdir: Path, trace: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "recurrentkit", "fit", "-c", str(RECIPE), "--trainer.fast_dev_run=false",
            f"--trainer.max_steps={MAX_STEPS}", "--trainer.enable_checkpointing=true",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--trainer.num_sanity_val_steps=0", f"--trainer.default_root_dir={workdir}",
            "--trainer.callbacks+=recurrentkit.callbacks.LossTrace", f"--trainer.callbacks.path={workdir / trace}",
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
            f"--trainer.callbacks.dirpath={workdir / 'checkpoints'}", "--trainer.callbacks.filename=last",
            f"--trainer.callbacks.every_n_train_steps={EVERY}", *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]))
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    return env


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


class _Reference:
    """The uninterrupted run, started at once and awaited only when a test compares against it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process = subprocess.Popen(_command(workdir, "trace.txt"), cwd=workdir, env=_env(),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._result = None

    def result(self):
        if self._result is None:
            _, stderr = self.process.communicate(timeout=600)
            assert self.process.returncode == 0, stderr[-3000:]
            self._result = (read_loss_trace(self.workdir / "trace.txt"),
                            _weights(self.workdir / "checkpoints" / "last.ckpt"))
        return self._result


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    reference = _Reference(tmp_path_factory.mktemp("uninterrupted"))
    yield reference
    if reference.process.poll() is None:
        reference.process.kill()


def _interrupt_and_resume(tmp_path: Path, signum: int) -> tuple[int, subprocess.CompletedProcess, Path]:
    pause_at = random.randrange(EVERY + 1, MAX_STEPS - 1)  # after the first checkpoint, before the end
    marker = tmp_path / "paused"
    child = subprocess.Popen(
        _command(tmp_path, "trace1.txt", "--trainer.callbacks+=fault_helpers.PauseMidStep",
                 f"--trainer.callbacks.step={pause_at}", f"--trainer.callbacks.marker={marker}"),
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), f"the child never reached step {pause_at}: {child.communicate()[1][-3000:]}"
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=120)
    interrupted = subprocess.CompletedProcess(child.args, child.returncode, "", stderr)
    resumed = _run(_command(tmp_path, "trace2.txt", "--ckpt_path", "last"), tmp_path)
    assert resumed.returncode == 0, f"resume after step {pause_at} failed:\n{resumed.stderr[-3000:]}"
    return pause_at, interrupted, resumed


def _assert_identical(tmp_path: Path, uninterrupted: _Reference, pause_at: int) -> None:
    reference, reference_weights = uninterrupted.result()
    combined = {**read_loss_trace(tmp_path / "trace1.txt"), **read_loss_trace(tmp_path / "trace2.txt")}
    assert combined == reference, f"interrupted at step {pause_at}: losses differ"
    weights = _weights(tmp_path / "checkpoints" / "last.ckpt")
    assert weights.keys() == reference_weights.keys()
    for name, value in weights.items():
        assert torch.equal(value, reference_weights[name]), f"interrupted at step {pause_at}: {name} differs"


# each test runs 2-3 short training processes (about 6 s of CPU each); the limit is for a heavily loaded machine
@pytest.mark.timeout(900)
def test_sigkill_between_checkpoints_resumes_bit_exactly(tmp_path, uninterrupted):
    pause_at, killed, resumed = _interrupt_and_resume(tmp_path, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    first_resumed_step = min(read_loss_trace(tmp_path / "trace2.txt"))
    assert first_resumed_step == pause_at // EVERY * EVERY + 1  # from the newest periodic checkpoint
    _assert_identical(tmp_path, uninterrupted, pause_at)


@pytest.mark.timeout(900)
def test_sigterm_checkpoints_at_the_step_and_resumes_bit_exactly(tmp_path, uninterrupted):
    pause_at, terminated, resumed = _interrupt_and_resume(tmp_path, signal.SIGTERM)
    assert terminated.returncode == 128 + signal.SIGTERM, terminated.stderr[-3000:]
    assert "received SIGTERM" in terminated.stderr and "--ckpt_path last" in terminated.stderr
    # the signal came mid-step pause_at + 1: that step finished, was checkpointed, and the resume starts after it
    assert max(read_loss_trace(tmp_path / "trace1.txt")) == pause_at + 1
    assert min(read_loss_trace(tmp_path / "trace2.txt")) == pause_at + 2
    _assert_identical(tmp_path, uninterrupted, pause_at)
