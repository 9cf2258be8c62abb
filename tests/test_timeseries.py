"""Time-series generators and DataModules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recurrentkit.data.timeseries import (
    NARMA10_COEFFICIENTS,
    CSVSeriesDataModule,
    MackeyGlassDataModule,
    NARMA10DataModule,
    SineTransformDataModule,
    load_csv_series,
    mackey_glass,
    narma10,
    sine_transform,
)


def _reference_mackey_glass(n_steps, tau=17, a=0.2, b=0.1, n=10, x0=1.2, h=1.0, seed=5555):
    """reservoirpy's scheme written out directly: 4-stage update with x(t - τ) held over the step."""
    lag = int(tau / h)
    hist = list(x0 + 0.2 * (np.random.default_rng(seed).random(lag) - 0.5))
    out, x = [], x0
    for _ in range(n_steps):
        out.append(x)
        x_tau = hist[-lag]
        drive = a * x_tau / (1 + x_tau ** n)
        k1 = -b * h * x + drive
        k2 = 2 * k1 - b * h * k1
        k3 = 2 * k1 - b * h * k2
        k4 = k1 - b * h * k3
        hist.append(x)
        x = x + (k1 + k2 + k3 + k4) / 6
    return np.array(out)


def test_mackey_glass_matches_direct_integration():
    series = mackey_glass(600)
    assert series.shape == (600, 1) and series.dtype == torch.float64
    np.testing.assert_allclose(series[:, 0].numpy(), _reference_mackey_glass(600), rtol=0, atol=1e-12)
    assert float(series[0]) == 1.2
    other = mackey_glass(300, tau=25, x0=1.0, seed=1)
    np.testing.assert_allclose(other[:, 0].numpy(), _reference_mackey_glass(300, tau=25, x0=1.0, seed=1), atol=1e-12)


def test_mackey_glass_attractor_agrees_with_a_fine_step_dde_integration():
    """Same chaotic attractor as the DDE integrated with RK4 at dt = 0.05 (statistics over 1500 time units)."""
    dt, lag = 0.05, int(17 / 0.05)
    hist = np.full(lag + 1, 1.2)
    x, values = 1.2, []
    for step in range(int(1500 / dt)):
        x_tau = hist[step % (lag + 1)]
        drive = 0.2 * x_tau / (1 + x_tau ** 10)
        f = lambda v, d=drive: d - 0.1 * v  # noqa: E731
        k1 = f(x)
        k2 = f(x + dt * k1 / 2)
        k3 = f(x + dt * k2 / 2)
        k4 = f(x + dt * k3)
        hist[step % (lag + 1)] = x
        x = x + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6
        if step % 20 == 0:
            values.append(x)
    fine = np.array(values[300:])
    ours = mackey_glass(1500)[300:, 0].numpy()
    assert abs(ours.mean() - fine.mean()) < 0.05 * fine.mean()
    assert abs(ours.std() - fine.std()) < 0.15 * fine.std()
    assert 0.3 < ours.min() and ours.max() < 1.5


def test_mackey_glass_matches_reservoirpy_when_installed():
    rpy = pytest.importorskip("reservoirpy.datasets", reason="reservoirpy is not installed (benchmark-only extra)")
    np.testing.assert_array_equal(mackey_glass(2000).numpy(), rpy.mackey_glass(2000))


def test_mackey_glass_errors():
    with pytest.raises(ValueError, match="n_timesteps"):
        mackey_glass(0)
    with pytest.raises(ValueError, match="history"):
        mackey_glass(10, history=[1.0, 1.1])


def test_narma10_recurrence_and_printed_coefficients(capsys):
    u, y = narma10(400, seed=3, washout=0)
    assert u.shape == y.shape == (400, 1)
    assert 0 <= float(u.min()) and float(u.max()) <= 0.5
    c = NARMA10_COEFFICIENTS
    assert (c["alpha"], c["beta"], c["gamma"], c["delta"]) == (0.3, 0.05, 1.5, 0.1)
    u, y = u[:, 0].numpy(), y[:, 0].numpy()  # y[t] here is y_{t+1}
    for t in range(20, 399):
        prev = y[t - 1]
        window = y[t - 10:t].sum()
        expected = 0.3 * prev + 0.05 * prev * window + 1.5 * u[t - 9] * u[t] + 0.1
        assert y[t] == pytest.approx(expected, abs=1e-12)
    dm = NARMA10DataModule(n_timesteps=300)
    assert dm.input_size == 1
    assert "0.3 y[t] + 0.05" in capsys.readouterr().out


def test_sine_transform():
    x, y = sine_transform(100, period=20, target="cosine")
    t = torch.arange(100, dtype=torch.float64)
    torch.testing.assert_close(x[:, 0], torch.sin(2 * math.pi * t / 20))
    torch.testing.assert_close(y[:, 0], torch.cos(2 * math.pi * t / 20))
    _, sq = sine_transform(100, period=20, target="square")
    assert set(sq[:, 0].tolist()) == {-1.0, 1.0}
    assert torch.equal(sq[:, 0] > 0, x[:, 0] >= 0)
    with pytest.raises(ValueError, match="target"):
        sine_transform(10, target="triangle")


def test_csv_series_with_a_missing_value_names_file_line_and_column(tmp_path):
    path = tmp_path / "weather.csv"
    path.write_text("time,temp\n0,1.5\n1,nan\n2,2.5\n")
    with pytest.raises(ValueError, match=r"weather\.csv, line 3, column 'temp' \(index 1\): 'nan' is not a finite"):
        load_csv_series(path)
    data = CSVSeriesDataModule(str(path), input_columns=["temp"], target_columns=["temp"])
    with pytest.raises(ValueError, match="line 3"):  # the sizes the command links read the file: before training
        _ = data.input_size


def test_csv_series(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text("time,load,temp\n0,1.5,20\n1,2.5,21\n2,3.5,22\n3,4.5,23\n")
    full = load_csv_series(path)
    assert full.shape == (4, 3)
    torch.testing.assert_close(load_csv_series(path, ["temp", 1]), full[:, [2, 1]])
    headless = tmp_path / "plain.csv"
    headless.write_text("1.0\n2.0\n3.0\n")
    assert load_csv_series(headless).shape == (3, 1)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_csv_series(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="pressure"):
        load_csv_series(path, ["pressure"])
    dm = CSVSeriesDataModule(str(path), input_columns=["load"], target_columns=["temp"], horizon=1, test_size=1)
    x, y, mask = dm.split("test")
    assert float(y[-1, 0]) == 23.0 and float(x[-1, 0]) == 3.5  # x[t] -> y[t+1]
    assert mask.tolist() == [False, False, True]


def test_splits_context_and_windows():
    dm = MackeyGlassDataModule(n_timesteps=2000, test_size=0.2)
    assert dm.split_bounds() == {"train": (0, 1599), "test": (1599, 1999), "val": (1599, 1999)}
    x, y, mask = dm.split("val")
    assert x.shape == (1999, 1) and int(mask.sum()) == 400 and not mask[:1599].any()
    torch.testing.assert_close(x[1:], y[:-1])  # one-step-ahead targets
    short = MackeyGlassDataModule(n_timesteps=2000, test_size=0.2, context=50)
    assert short.split("val")[0].shape[0] == 450
    windows = SineTransformDataModule(n_timesteps=1000, test_size=0.2, window=100, batch_size=4)
    xb, yb, mb = next(iter(windows.train_dataloader()))
    assert xb.shape == (4, 100, 1) and mb.all()
    assert len(windows.train_dataloader().dataset) == 8
    with pytest.raises(ValueError, match="test_size"):
        MackeyGlassDataModule(n_timesteps=100, test_size=1.5).split_bounds()
