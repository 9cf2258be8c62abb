"""Forecasting metrics, closed-loop generation, the closed-form ESN task and the recipes."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from recurrentkit.cli import build_cli
from recurrentkit.data.timeseries import MackeyGlassDataModule, SineTransformDataModule
from recurrentkit.tasks.forecasting import ForecastingTask, closed_loop, forecast_metrics, scored
from recurrentkit.tasks.reservoir import ReservoirTask

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes" / "reservoir").glob("*.yaml"))


def _trainer(**kw):
    args = dict(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", devices=1)
    return L.Trainer(**{**args, **kw})


def _loss(model, batch):
    x, y, mask = batch
    with torch.no_grad():
        return float(torch.nn.functional.mse_loss(model(x)[0][mask], y[mask]))


def test_metrics_against_hand_computation():
    preds = [torch.tensor([1.0, 2.0, 3.5]), torch.tensor([4.0, 4.5])]
    target = [torch.tensor([1.5, 2.0, 3.0]), torch.tensor([5.0, 4.0])]
    metrics = forecast_metrics("val/")
    for p, t in zip(preds, target):  # two updates: the statistics must pool across batches
        metrics.update(p, t)
    result = {k: float(v) for k, v in metrics.compute().items()}
    p, t = torch.cat(preds).double(), torch.cat(target).double()
    mse = float(((p - t) ** 2).mean())
    std = float(((t - t.mean()) ** 2).mean().sqrt())  # population std of the targets
    r2 = 1 - float(((p - t) ** 2).sum() / ((t - t.mean()) ** 2).sum())
    assert result["val/rmse"] == pytest.approx(mse ** 0.5, rel=1e-6)
    assert result["val/nrmse"] == pytest.approx(mse ** 0.5 / std, rel=1e-6)
    assert result["val/r2"] == pytest.approx(r2, rel=1e-6)


def test_scored_keeps_masked_rows():
    preds, target = torch.arange(6.0).view(1, 6, 1), torch.zeros(1, 6, 1)
    mask = torch.tensor([[False, False, True, True, False, True]])
    p, t = scored(preds, target, mask)
    assert p.tolist() == [2.0, 3.0, 5.0] and t.shape == (3,)


class _AddOne(torch.nn.Module):
    """y_t = x_t + 1 with a step counter as the state."""

    def forward(self, x, state=None):
        calls = 0 if state is None else state
        return x + 1, calls + x.shape[1]


def test_closed_loop_feeds_outputs_back():
    warmup = torch.tensor([[[0.0], [5.0]]])
    generated = closed_loop(_AddOne(), warmup, steps=4)
    assert generated[0, :, 0].tolist() == [6.0, 7.0, 8.0, 9.0]  # each output is the next input
    with pytest.raises(ValueError, match="output size"):
        closed_loop(lambda x, s: (torch.cat([x, x], -1), s), warmup, steps=2)


def test_tiny_esn_learns_sine_to_cosine():
    model = ReservoirTask(hidden_size=50, spectral_radius=0.9, leak_rate=0.5, ridge=1e-6, washout=50,
                          bias_scaling=0.2, input_density=1.0, seed=0)
    data = SineTransformDataModule(n_timesteps=1200, period=40, target="cosine", test_size=0.25)
    trainer = _trainer()
    trainer.fit(model, datamodule=data)
    assert model.model.head.num_samples == 900 - 50
    assert float(trainer.callback_metrics["val/rmse"]) < 1e-2
    assert float(trainer.callback_metrics["val/r2"]) > 0.999


def test_esn_closed_loop_generation_tracks_mackey_glass():
    model = ReservoirTask(hidden_size=100, spectral_radius=1.25, leak_rate=0.3, ridge=1e-5, washout=100, seed=0)
    data = MackeyGlassDataModule(n_timesteps=1200, test_size=0.2)
    _trainer().fit(model, datamodule=data)
    x, y, mask = data.split("val")
    first = int(mask.nonzero()[0])
    generated = model.generate(x[None, :first + 1], steps=20)
    assert generated.shape == (1, 20, 1)
    error = (generated[0, :, 0] - y[first:first + 20, 0]).abs().max()
    assert error < 0.05  # free-running for 20 steps stays on the series
    # feeding back means the second generated value depends on the first prediction, not on the true input
    one_step, _ = model(x[None, :first + 2])
    assert not torch.allclose(generated[0, 1], one_step[0, -1])


def test_sgd_forecasting_task_reduces_the_loss():
    torch.manual_seed(0)
    model = ForecastingTask(cell="leaky", hidden_size=16, cell_kwargs={"alpha": 0.5},
                            optimizer=lambda p: torch.optim.Adam(p, lr=1e-2))
    data = SineTransformDataModule(n_timesteps=600, period=30, target="cosine", test_size=0.2, window=60,
                                   batch_size=8)
    batch = next(iter(data.train_dataloader()))
    before = _loss(model, batch)
    _trainer(max_epochs=8).fit(model, datamodule=data)
    after = _loss(model, batch)
    assert after < 0.5 * before


def test_sgd_readout_option_trains_the_readout():
    model = ReservoirTask(hidden_size=30, readout_training="sgd", seed=0,
                          optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    data = SineTransformDataModule(n_timesteps=400, period=40, target="cosine", test_size=0.25, window=50,
                                   batch_size=6)
    start = model.model.head.weight.detach().clone()
    _trainer(max_epochs=3).fit(model, datamodule=data)
    assert not torch.equal(model.model.head.weight.detach(), start)
    assert all(not p.requires_grad or "head" in n for n, p in model.named_parameters())


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_instantiate(recipe):
    config = yaml.safe_load(recipe.read_text())
    assert recipe.read_text().startswith("#"), "a recipe opens with its command and target"
    cli = build_cli(["-c", str(recipe), "--trainer.logger=false"], run=False)
    model, data = cli.model, cli.datamodule
    assert isinstance(model, L.LightningModule) and isinstance(data, L.LightningDataModule)
    assert data.input_size == model.hparams.input_size
    for name, value in config["model"]["init_args"].items():  # flat recipe keys reach the task or its model
        if not isinstance(value, dict):
            assert model.hparams[name] == value, name
    assert config["trainer"]["max_epochs"] >= 1


def test_recipes_exist():
    assert {p.name for p in RECIPES} >= {"mackey-glass.yaml", "narma10.yaml", "sine-transform.yaml",
                                         "leaky-bptt-mackey-glass.yaml"}


@pytest.mark.parametrize("task_class, kwargs", [
    (ForecastingTask, {"cell": "leaky", "hidden_size": 8, "cell_kwargs": {"alpha": 0.5}}),
    (ReservoirTask, {"hidden_size": 20, "spectral_radius": 0.8, "washout": 10, "seed": 3}),
])
def test_load_from_checkpoint_rebuilds_the_model(task_class, kwargs, tmp_path):
    """The forwarded model arguments are saved as hyperparameters, so a checkpoint rebuilds the same network."""
    model = task_class(**kwargs)
    data = SineTransformDataModule(n_timesteps=300, period=30, target="cosine", test_size=0.2, window=40,
                                   batch_size=4)
    trainer = _trainer(max_epochs=1)
    trainer.fit(model, datamodule=data)
    path = tmp_path / "task.ckpt"
    trainer.save_checkpoint(path)
    loaded = task_class.load_from_checkpoint(path)
    assert {k: loaded.hparams[k] for k in kwargs} == kwargs
    x, _, _ = data.split("val")
    torch.testing.assert_close(loaded(x[None])[0], model(x[None])[0])
