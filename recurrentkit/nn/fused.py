"""Dispatch one layer of cells to PyTorch's fused RNN kernels (oneDNN/native on CPU, cuDNN on GPU).

The kernels are the ones ``torch.nn.RNN/LSTM/GRU`` call (``torch._VF.rnn_tanh/rnn_relu/lstm/gru``); they receive the
cells' own parameters, so nothing is copied per step and gradients land on the cells' parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..cells.base import RecurrentCell, State
from ..cells.kernels import fused_mode_of

_KERNELS = {
    "LSTM": torch._VF.lstm,
    "GRU": torch._VF.gru,
    "RNN_TANH": torch._VF.rnn_tanh,
    "RNN_RELU": torch._VF.rnn_relu,
}


def fused_stack_mode(layers: Sequence[Sequence[RecurrentCell]]) -> str | None:
    """The fused mode shared by all ``layers`` when one kernel call can run the whole stack (as ``torch.nn.LSTM``
    does): same mode, and every layer after the first has the same weight shapes."""
    modes = {fused_mode_of(cells) for cells in layers}
    if len(modes) != 1 or None in modes:
        return None
    shapes = {tuple(tuple(w.shape) for w in cell.fused_weights()) for cells in layers[1:] for cell in cells}
    rest = {tuple(tuple(w.shape) for w in cell.fused_weights()[1:]) for cells in layers for cell in cells}
    return modes.pop() if len(shapes) <= 1 and len(rest) == 1 else None


def run_fused_layer(cells: Sequence[RecurrentCell], x: Tensor, states: Sequence[State], lengths: Tensor | None,
                    training: bool) -> tuple[Tensor, list[State]]:
    """Run one (possibly bidirectional) layer on the fused kernel.

    Args:
        cells: one cell, or two (forward, backward) sharing a :func:`fused_mode_of`.
        x: ``[T, B, I]`` input.
        states: one state per cell.
        lengths: ``[B]`` valid lengths or ``None``; padded outputs come back as zeros.
    """
    return run_fused_stack([cells], x, states, lengths, training)


def run_fused_stack(layers: Sequence[Sequence[RecurrentCell]], x: Tensor, states: Sequence[State],
                    lengths: Tensor | None, training: bool, dropout: float = 0.0) -> tuple[Tensor, list[State]]:
    """Run a stack of layers sharing a :func:`fused_stack_mode` in one kernel call (dropout between layers)."""
    cells = [cell for layer in layers for cell in layer]
    mode = cells[0].fused_mode
    kernel = _KERNELS[mode]
    weights = [w for cell in cells for w in cell.fused_weights()]
    has_bias = len(cells[0].fused_weights()) in (4, 5)
    bidirectional = len(layers[0]) == 2
    num_layers = len(layers)
    is_lstm = mode == "LSTM"
    h0 = torch.stack([s[0] for s in states])
    hx = (h0, torch.stack([s[1] for s in states])) if is_lstm else h0

    if lengths is None:
        result = kernel(x, hx, weights, has_bias, num_layers, dropout, training, bidirectional, False)
        output, final = result[0], result[1:]
    else:
        packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        sorted_idx = packed.sorted_indices
        hx_sorted = tuple(h.index_select(1, sorted_idx) for h in hx) if is_lstm else hx.index_select(1, sorted_idx)
        result = kernel(packed.data, packed.batch_sizes, hx_sorted, weights, has_bias, num_layers, dropout, training,
                        bidirectional)
        output, _ = pad_packed_sequence(
            PackedSequence(result[0], packed.batch_sizes, sorted_idx, packed.unsorted_indices),
            total_length=x.shape[0])
        final = tuple(h.index_select(1, packed.unsorted_indices) for h in result[1:])

    state_type = cells[0].state_type
    new_states = [state_type(*(f[d] for f in final)) for d in range(len(cells))]
    return output, new_states
