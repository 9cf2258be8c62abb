"""The command always adds the divergence guard and the preemption checkpoint, and keeps Lightning's default
``ModelCheckpoint`` (which Lightning itself would drop, since the preemption checkpoint is a ``Checkpoint``)."""

from pathlib import Path

import pytest
from lightning.pytorch.callbacks import ModelCheckpoint

from recurrentkit.callbacks import DivergenceGuard, PreemptionCheckpoint
from recurrentkit.cli.lightning import build_cli

TINY = str(Path(__file__).resolve().parents[1] / "recipes" / "debug" / "tiny-lm.yaml")


def _callbacks(*flags):
    cli = build_cli(["-c", TINY, "--trainer.fast_dev_run=false", *flags], run=False)
    return cli.trainer.callbacks


@pytest.mark.parametrize("flags, preemption, model_checkpoint", [
    (["--trainer.enable_checkpointing=true"], True, True),
    (["--trainer.enable_checkpointing=true", "--preemption.enabled=false"], False, True),
    (["--trainer.enable_checkpointing=false"], False, False),
])
def test_the_command_wires_the_safety_callbacks(flags, preemption, model_checkpoint):
    callbacks = _callbacks(*flags)
    assert any(isinstance(c, DivergenceGuard) for c in callbacks)
    assert any(isinstance(c, PreemptionCheckpoint) for c in callbacks) == preemption
    assert any(isinstance(c, ModelCheckpoint) for c in callbacks) == model_checkpoint
