"""Time series for reservoir computing and forecasting: Mackey-Glass, NARMA10, sine-to-square/cosine, CSV files.

Every generator returns float64 tensors shaped ``[T, features]``. The DataModules turn a series into contiguous
train / validation / test splits and yield ``(x, y, mask)`` batches, batch first: ``x [B, T, I]``, ``y [B, T, O]``
and ``mask [B, T]`` (``False`` at context steps that are run through the network but not scored).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from .bucketing import BucketBatchSampler
from .resumable import ResumableBatches

MACKEY_GLASS_SEED = 5555  # reservoirpy's hard-coded default dataset seed (reservoirpy/datasets/_seed.py)
NARMA10_COEFFICIENTS = {"alpha": 0.3, "beta": 0.05, "gamma": 1.5, "delta": 0.1}
NARMA10_EQUATION = ("y[t+1] = 0.3 y[t] + 0.05 y[t] (y[t] + ... + y[t-9]) + 1.5 u[t-9] u[t] + 0.1,  "
                    "u[t] ~ U[0, 0.5]")


def _mg_step(x: float, x_tau: float, a: float, b: float, n: int, h: float) -> float:
    """reservoirpy's Mackey-Glass update (``_mg_rk4``), reproduced term for term."""
    bh = -b * h
    k1 = bh * x + a * x_tau / (1 + x_tau ** n)
    k2 = 2 * k1 + bh * k1
    k3 = 2 * k1 + bh * k2
    k4 = k1 + bh * k3
    return x + (k1 + k2 + k3 + k4) / 6


def mackey_glass(n_timesteps: int, tau: int = 17, a: float = 0.2, b: float = 0.1, n: int = 10, x0: float = 1.2,
                 h: float = 1.0, seed: int | None = MACKEY_GLASS_SEED, history: Sequence[float] | None = None
                 ) -> Tensor:
    """Mackey-Glass series ``dx/dt = a x(t-τ) / (1 + x(t-τ)^n) - b x(t)``, shape ``[n_timesteps, 1]``.

    Same defaults, seed and discretisation as ``reservoirpy.datasets.mackey_glass`` (reservoirpy 0.4): step ``h``
    with the delayed value held for the step, a history of ``floor(τ/h)`` values ``x0 + 0.2 (U[0,1) - 0.5)`` drawn
    from ``numpy.random.default_rng(seed)``, and the series starting at ``x0``. ``mackey_glass(2000)`` reproduces
    reservoirpy's ``mackey_glass(2000)`` to the last bit.
    """
    if n_timesteps <= 0:
        raise ValueError(f"n_timesteps must be positive, got {n_timesteps}")
    if h <= 0:
        raise ValueError(f"h (time step) must be positive, got {h}")
    lag = int(math.floor(tau / h))
    if history is None:
        rng = np.random.default_rng(seed)
        past = x0 * np.ones(lag) + 0.2 * (rng.random(lag) - 0.5)
    else:
        past = np.asarray(history, dtype=np.float64)
        if len(past) < lag:
            raise ValueError(f"history has {len(past)} values, fewer than tau/h = {lag}")
        past = past[len(past) - lag:]
    series = np.empty(lag + n_timesteps)
    series[:lag] = past
    x = x0
    for i in range(lag, lag + n_timesteps):
        series[i] = x
        x_tau = series[i - lag] if tau > 0 else 0.0
        x = _mg_step(x, x_tau, a, b, n, h)
    return torch.from_numpy(series[lag:].copy()).unsqueeze(-1)


def narma10(n_timesteps: int, seed: int = 0, washout: int = 200) -> tuple[Tensor, Tensor]:
    """NARMA10 (Atiya & Parlos 2000): returns ``(u, y)``, each ``[n_timesteps, 1]``, with target ``y[t+1]``.

    ``y[t+1] = 0.3 y[t] + 0.05 y[t] Σ_{i=0}^{9} y[t-i] + 1.5 u[t-9] u[t] + 0.1`` with ``u ~ U[0, 0.5]``
    (the standard coefficients, :data:`NARMA10_COEFFICIENTS`). Row ``t`` pairs input ``u[t]`` with target
    ``y[t+1]``. ``washout`` steps are simulated first and discarded, so the system starts from its attractor.
    """
    if n_timesteps <= 0:
        raise ValueError(f"n_timesteps must be positive, got {n_timesteps}")
    c = NARMA10_COEFFICIENTS
    total = n_timesteps + washout
    u_arr = np.random.default_rng(seed).uniform(0.0, 0.5, total)
    u, y = u_arr.tolist(), [0.0] * (total + 1)  # Python floats: ~10x faster than NumPy scalars in this loop
    alpha, beta, gamma, delta = c["alpha"], c["beta"], c["gamma"], c["delta"]
    for t in range(total):
        window = sum(y[max(0, t - 9):t + 1])
        u_lag = u[t - 9] if t >= 9 else 0.0
        y[t + 1] = alpha * y[t] + beta * y[t] * window + gamma * u_lag * u[t] + delta
    return (torch.tensor(u[washout:], dtype=torch.float64).unsqueeze(-1),
            torch.tensor(y[washout + 1:], dtype=torch.float64).unsqueeze(-1))


def sine_transform(n_timesteps: int, period: float = 50.0, target: str = "square") -> tuple[Tensor, Tensor]:
    """Wave transformation: input ``sin(2πt/P)``, target the square wave ``sign(sin)`` or ``cos(2πt/P)``."""
    if target not in ("square", "cosine"):
        raise ValueError(f"target must be 'square' or 'cosine', got {target!r}")
    if period <= 0:
        raise ValueError(f"period must be positive, got {period}")
    phase = 2 * math.pi * torch.arange(n_timesteps, dtype=torch.float64) / period
    x = torch.sin(phase)
    y = torch.cos(phase) if target == "cosine" else torch.where(x >= 0, 1.0, -1.0).to(torch.float64)
    return x.unsqueeze(-1), y.unsqueeze(-1)


def load_csv_series(path: str | Path, columns: Sequence[str | int] | None = None, delimiter: str = ",") -> Tensor:
    """Read a 1-D or multi-column numeric series from a CSV file (one row per time step): ``[T, columns]``.

    A first row that is not numeric is taken as the header; ``columns`` picks columns by header name or index
    (default: all).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV series not found: {path}")
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter=delimiter) if row and any(cell.strip() for cell in row)]
    if not rows:
        raise ValueError(f"{path} holds no rows")
    header: list[str] | None = None
    try:
        [float(cell) for cell in rows[0]]
    except ValueError:
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    width = len(rows[0]) if rows else 0
    if columns is None:
        index = list(range(width))
    else:
        index = []
        for column in columns:
            if isinstance(column, int):
                if not -width <= column < width:
                    raise ValueError(f"column index {column} out of range for {width} columns in {path}")
                index.append(column % width)
            elif header is not None and column in header:
                index.append(header.index(column))
            else:
                raise ValueError(f"column {column!r} not in {path} (header: {header})")
    values = []
    for line, row in enumerate(rows, start=2 if header else 1):
        try:
            numbers = [float(row[i]) for i in index]
        except (ValueError, IndexError) as err:
            raise ValueError(f"{path}, line {line}: cannot read columns {index} as numbers ({err})") from None
        for i, number in zip(index, numbers):
            if not math.isfinite(number):
                name = f"{header[i]!r} (index {i})" if header is not None and i < len(header) else f"index {i}"
                raise ValueError(f"{path}, line {line}, column {name}: {row[i].strip()!r} is not a finite number; "
                                 "fill or drop missing values before training")
        values.append(numbers)
    if not values:
        raise ValueError(f"{path} holds a header but no data")
    return torch.tensor(values, dtype=torch.float64)


class SequenceWindows(Dataset):
    """Windows of a series: item ``i`` is ``(x, y, mask)`` for one contiguous window."""

    def __init__(self, x: Tensor, y: Tensor, mask: Tensor, window: int | None = None) -> None:
        steps = x.shape[0]
        window = steps if window is None else min(window, steps)
        self.x, self.y, self.mask = x, y, mask
        self.starts = list(range(0, steps - window + 1, window))
        self.window = window

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        s = self.starts[index]
        return self.x[s:s + self.window], self.y[s:s + self.window], self.mask[s:s + self.window]


class SeriesDataModule(L.LightningDataModule):
    """Contiguous train / val / test splits of an (input, target) series.

    Args:
        test_size: steps (int) or fraction (float) at the end kept for testing; ``val_size`` likewise before it
            (``0`` reuses the test split for validation, as reservoirpy's README does).
        context: steps preceding an evaluation split that are run but not scored (``None``: the whole series
            before it, which equals carrying the reservoir state on from training).
        window: cut the training split into windows of this length (BPTT); ``None`` keeps one sequence (ESN).
        batch_size: training windows per batch.
        dtype: ``"float32"`` or ``"float64"`` for the tensors handed to the model.
        shuffle_seed: seed of the training-window order (epoch ``e`` uses ``shuffle_seed + e``), so a resumed run
            sees the same windows in the same order.

    Subclasses implement :meth:`make_series` returning ``(x [T, I], y [T, O])``.
    """

    def __init__(self, test_size: float | int = 0.2, val_size: float | int = 0, context: int | None = None,
                 window: int | None = None, batch_size: int = 1, dtype: str = "float32", shuffle_seed: int = 0
                 ) -> None:
        super().__init__()
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.test_size, self.val_size, self.context = test_size, val_size, context
        self.window, self.batch_size, self.dtype = window, batch_size, getattr(torch, dtype)
        self.shuffle_seed = int(shuffle_seed)
        self.series: tuple[Tensor, Tensor] | None = None

    def make_series(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    @property
    def input_size(self) -> int:
        return self._series()[0].shape[-1]

    @property
    def output_size(self) -> int:
        return self._series()[1].shape[-1]

    def _series(self) -> tuple[Tensor, Tensor]:
        if self.series is None:
            x, y = self.make_series()
            if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
                raise ValueError(f"make_series must return x [T, I] and y [T, O], got {tuple(x.shape)}, "
                                 f"{tuple(y.shape)}")
            self.series = (x.to(self.dtype), y.to(self.dtype))
        return self.series

    @staticmethod
    def _steps(size: float | int, total: int, name: str) -> int:
        if isinstance(size, float) and 0 <= size < 1:
            return round(total * size)
        if isinstance(size, int) and 0 <= size < total:
            return size
        raise ValueError(f"{name} must be a fraction in [0, 1) or a step count below {total}, got {size!r}")

    def split_bounds(self) -> dict[str, tuple[int, int]]:
        """``{"train": (0, a), "val": (a, b), "test": (b, T)}`` in steps."""
        total = self._series()[0].shape[0]
        test = self._steps(self.test_size, total, "test_size")
        val = self._steps(self.val_size, total, "val_size")
        end_train = total - test - val
        if end_train <= 0:
            raise ValueError(f"no training steps left: {total} steps, val {val}, test {test}")
        bounds = {"train": (0, end_train), "test": (total - test, total)}
        bounds["val"] = (end_train, total - test) if val else bounds["test"]
        return bounds

    def split(self, name: str) -> tuple[Tensor, Tensor, Tensor]:
        """``(x, y, mask)`` of one split with its context prepended (``mask`` is ``False`` on the context)."""
        x, y = self._series()
        start, end = self.split_bounds()[name]
        first = start if name == "train" else (0 if self.context is None else max(0, start - self.context))
        mask = torch.zeros(end - first, dtype=torch.bool)
        mask[start - first:] = True
        return x[first:end], y[first:end], mask

    def train_dataloader(self) -> ResumableBatches:
        """Training windows, shuffled (when ``window`` is set) in an order that is a function of
        ``(shuffle_seed, epoch)``, resumable mid-epoch (:class:`~recurrentkit.data.resumable.ResumableBatches`)."""
        windows = SequenceWindows(*self.split("train"), window=self.window)
        trainer = getattr(self, "trainer", None)
        # one whole sequence (ESN): every rank runs it, as Lightning's padded DistributedSampler did
        if trainer is not None and self.window is not None:
            replicas, rank = trainer.world_size, trainer.global_rank
        else:
            replicas, rank = 1, 0
        sampler = BucketBatchSampler([0] * len(windows), self.batch_size, shuffle=self.window is not None,
                                     num_replicas=replicas, rank=rank, seed=self.shuffle_seed)
        return ResumableBatches(windows, sampler)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(SequenceWindows(*self.split("val")), batch_size=1)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(SequenceWindows(*self.split("test")), batch_size=1)


class MackeyGlassDataModule(SeriesDataModule):
    """One-step (or ``horizon``-step) forecasting of Mackey-Glass: input ``x[t]``, target ``x[t + horizon]``.

    The defaults are reservoirpy's README: 2000 steps of ``mackey_glass`` (τ = 17, seed 5555), the last 20 % of the
    1999 (input, target) pairs for testing, the reservoir state carried on from training.
    """

    def __init__(self, n_timesteps: int = 2000, tau: int = 17, horizon: int = 1, seed: int = MACKEY_GLASS_SEED,
                 normalize: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.n_timesteps, self.tau, self.horizon, self.seed, self.normalize = n_timesteps, tau, horizon, seed, normalize

    def make_series(self) -> tuple[Tensor, Tensor]:
        s = mackey_glass(self.n_timesteps, tau=self.tau, seed=self.seed)
        if self.normalize:  # to [-1, 1]
            s = 2 * (s - s.min()) / (s.max() - s.min()) - 1
        return s[:-self.horizon], s[self.horizon:]


class NARMA10DataModule(SeriesDataModule):
    """NARMA10 system identification: input ``u[t]``, target ``y[t+1]`` (coefficients printed at setup)."""

    def __init__(self, n_timesteps: int = 10000, seed: int = 0, **kwargs) -> None:
        kwargs.setdefault("context", 200)
        super().__init__(**kwargs)
        self.n_timesteps, self.seed = n_timesteps, seed

    def make_series(self) -> tuple[Tensor, Tensor]:
        print(f"NARMA10: {NARMA10_EQUATION}  (coefficients {NARMA10_COEFFICIENTS})")
        return narma10(self.n_timesteps, seed=self.seed)


class SineTransformDataModule(SeriesDataModule):
    """Map ``sin`` to a square wave or to ``cos`` (the wave-transformation task)."""

    def __init__(self, n_timesteps: int = 3000, period: float = 50.0, target: str = "square", **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_timesteps, self.period, self.target = n_timesteps, period, target

    def make_series(self) -> tuple[Tensor, Tensor]:
        return sine_transform(self.n_timesteps, self.period, self.target)


class CSVSeriesDataModule(SeriesDataModule):
    """Forecast columns of a CSV file ``horizon`` steps ahead from (other or the same) columns.

    Args:
        path: the CSV file, one row per time step.
        input_columns: columns fed to the model (default: all).
        target_columns: columns to predict ``horizon`` steps ahead (default: the input columns).
    """

    def __init__(self, path: str, input_columns: list[str | int] | None = None,
                 target_columns: list[str | int] | None = None, horizon: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        if horizon < 0:
            raise ValueError(f"horizon must be >= 0, got {horizon}")
        self.path, self.horizon = path, horizon
        self.input_columns, self.target_columns = input_columns, target_columns

    def make_series(self) -> tuple[Tensor, Tensor]:
        x = load_csv_series(self.path, self.input_columns)
        y = x if self.target_columns is None else load_csv_series(self.path, self.target_columns)
        if self.horizon == 0:
            return x, y
        return x[:-self.horizon], y[self.horizon:]
