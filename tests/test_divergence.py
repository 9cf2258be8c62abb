"""The divergence guard: a non-finite training loss stops the run at once, naming the step; NaN evaluation
metrics are reported (never dropped) and refused; the guard can be turned off."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torchmetrics import MeanMetric

from recurrentkit import cli
from recurrentkit.callbacks.divergence import DivergenceError, DivergenceGuard

ROOT = Path(__file__).resolve().parents[1]
TINY = ["-c", str(ROOT / "recipes" / "debug" / "tiny-lm.yaml"), "--trainer.fast_dev_run=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.num_sanity_val_steps=0"]


class _Regression(L.LightningModule):
    """y = w x with a chosen learning rate; ``poison_val`` makes one validation batch's loss NaN."""

    def __init__(self, lr: float, poison_val: bool = False) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.lr, self.poison_val = lr, poison_val
        self.val_loss = MeanMetric(nan_strategy="disable")

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        if self.poison_val and batch_idx == 1:
            loss = loss * float("nan")
        self.val_loss.update(loss)

    def on_validation_epoch_end(self):
        self.log("val/loss", self.val_loss.compute())
        self.val_loss.reset()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def _loader():
    x = torch.linspace(-1, 1, 32).unsqueeze(1)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 3 * x), batch_size=8)


def _trainer(tmp_path, guard, **kw):
    from lightning.pytorch.callbacks import ModelCheckpoint

    return L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False,
                     callbacks=[guard, ModelCheckpoint(dirpath=tmp_path / "ck", filename="last",
                                                       every_n_train_steps=2)], **kw)


def test_nonfinite_loss_stops_at_once_and_leaves_the_last_checkpoint_alone(tmp_path):
    model = _Regression(lr=0.1)
    trainer = _trainer(tmp_path, DivergenceGuard(), max_steps=4, limit_val_batches=0)
    trainer.fit(model, _loader())  # 4 good steps, checkpoint at step 4
    checkpoint = tmp_path / "ck" / "last.ckpt"
    before = checkpoint.read_bytes()
    with torch.no_grad():
        model.layer.weight.fill_(float("inf"))
    trainer = _trainer(tmp_path, DivergenceGuard(), max_steps=8, limit_val_batches=0)
    with pytest.raises(DivergenceError, match=r"training loss is (nan|inf).*global step 0.*last\.ckpt"):
        trainer.fit(model, _loader())
    assert trainer.global_step == 0  # no optimizer step was taken with the non-finite loss
    assert checkpoint.read_bytes() == before


def test_the_guard_can_be_turned_off(tmp_path):
    model = _Regression(lr=float("inf"))
    trainer = _trainer(tmp_path, DivergenceGuard(enabled=False), max_steps=3, limit_val_batches=0)
    trainer.fit(model, _loader())
    assert trainer.global_step == 3 and not torch.isfinite(model.layer.weight).all()


def test_a_nan_validation_batch_is_refused_not_dropped(tmp_path):
    model = _Regression(lr=0.1, poison_val=True)
    trainer = _trainer(tmp_path, DivergenceGuard(), max_epochs=1, num_sanity_val_steps=0)
    with pytest.raises(DivergenceError, match="val/loss is NaN"):
        trainer.fit(model, _loader(), _loader())
    trainer = _trainer(tmp_path, DivergenceGuard(enabled=False), max_epochs=1, num_sanity_val_steps=0)
    trainer.fit(model, _loader(), _loader())
    assert torch.isnan(trainer.callback_metrics["val/loss"])  # reported as NaN, not a mean over the other batches


def test_cli_lr_inf_exits_nonzero_naming_the_nonfinite_loss(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["fit", *TINY, "--trainer.max_steps=5", "--model.init_args.optimizer.init_args.lr=.inf"])
    err = capsys.readouterr().err
    assert code == 1
    assert "training loss is nan" in err and "global step 1" in err and "--divergence.enabled false" in err


def test_cli_flag_turns_the_guard_off(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", *TINY, "--trainer.max_steps=3", "--model.init_args.optimizer.init_args.lr=.inf",
                     "--divergence.enabled=false", "--trainer.limit_val_batches=0"]) == 0
