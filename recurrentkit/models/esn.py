"""``EchoStateNetwork``: a fixed ``esn`` reservoir and a :class:`~recurrentkit.nn.readout.RidgeReadout` fitted in
closed form (or trained by gradient descent)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..nn.readout import RidgeReadout
from ..nn.recurrent import Recurrent


class EchoStateNetwork(nn.Module):
    """``h_t = (1 - a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b)``, ``y_t = W_out [h_t; x_t] + b_out``.

    The reservoir weights are seeded buffers (no parameters); only the readout learns.

    Args:
        input_size, output_size: features in and out.
        hidden_size: reservoir units.
        spectral_radius, leak_rate, input_scaling, density, input_density, bias_scaling, seed: the reservoir
            (see :class:`~recurrentkit.cells.esn.ESNCell`).
        ridge: the ridge ``λ`` of the readout.
        input_to_readout: the readout also sees the input (``y = W [h; x] + b``).

    ``forward(x [B, T, I], state=None) -> (y [B, T, O], state)``.
    """

    def __init__(self, input_size: int = 1, output_size: int = 1, hidden_size: int = 100,
                 spectral_radius: float = 0.9, leak_rate: float = 1.0, input_scaling: float = 1.0,
                 density: float = 0.1, input_density: float = 0.1, bias_scaling: float = 0.0, seed: int = 0,
                 ridge: float = 1e-6, input_to_readout: bool = False) -> None:
        super().__init__()
        self.rnn = Recurrent("esn", input_size, hidden_size, spectral_radius=spectral_radius, leak_rate=leak_rate,
                             input_scaling=input_scaling, density=density, input_density=input_density,
                             bias_scaling=bias_scaling, seed=seed)
        self.head = RidgeReadout(hidden_size, output_size, ridge=ridge,
                                 input_features=input_size if input_to_readout else 0)

    def reservoir_states(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """``x [B, T, I] -> (states [T, B, H], final state)``, time-major."""
        return self.rnn(x.transpose(0, 1), state)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        states, state = self.reservoir_states(x, state)
        return self.head(states, x.transpose(0, 1)).transpose(0, 1), state


__all__ = ["EchoStateNetwork"]
