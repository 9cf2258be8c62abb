"""``RecurrentRegressor``: inputs ``[B, T, I]`` -> :class:`~recurrentkit.Recurrent` (any cell) -> linear head
``[B, T, O]``, for sequence regression and forecasting."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from ..nn.recurrent import Recurrent


class RecurrentRegressor(nn.Module):
    """``y_t = W h_t + b`` over a recurrent layer: one prediction per step.

    Args:
        input_size: features per step ``I``.
        output_size: predicted features per step ``O``.
        cell: any registered cell name (``"lstm"``, ``"leaky"``, ...) or import path.
        hidden_size: hidden units per layer.
        num_layers: stacked recurrent layers.
        cell_kwargs: extra keyword arguments of the cell (e.g. ``{"alpha": 0.7}`` for ``"leaky"``).

    ``forward(x [B, T, I], state=None) -> (y [B, T, O], state)``.
    """

    def __init__(self, input_size: int = 1, output_size: int = 1, cell: str = "lstm", hidden_size: int = 64,
                 num_layers: int = 1, cell_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if input_size < 1 or output_size < 1:
            raise ValueError(f"input_size and output_size must be >= 1, got {input_size}, {output_size}")
        self.rnn = Recurrent(cell, input_size, hidden_size, num_layers=num_layers, batch_first=True,
                             **dict(cell_kwargs or {}))
        self.head = nn.Linear(self.rnn.output_size, output_size)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        hidden, state = self.rnn(x, state)
        return self.head(hidden), state


__all__ = ["RecurrentRegressor"]
