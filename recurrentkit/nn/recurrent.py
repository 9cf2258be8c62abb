"""``Recurrent``: run any registered cell over a sequence (stacking, bidirectional, lengths, state carry)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..cells.base import RecurrentCell, State
from ..cells.kernels import choose_path, records_grad, run_path, step_loop
from ..cells.registry import create_cell, validate_cell, validate_cell_class
from .fused import fused_stack_mode, run_fused_layer, run_fused_stack

CellSpec = Union[str, Callable[..., RecurrentCell]]


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x`` [T, B, ...] within its own length; padding stays at the end."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    lengths = lengths.to(x.device).unsqueeze(0)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(0, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class LearnedInitialState(nn.Module):
    """One trainable vector per state field, broadcast over the batch."""

    def __init__(self, cell: RecurrentCell) -> None:
        super().__init__()
        self.state_type = cell.state_type
        self.values = nn.ParameterList([nn.Parameter(torch.zeros(size)) for size in cell.state_size])

    def forward(self, batch_size: int) -> State:
        return self.state_type(*(v.unsqueeze(0).expand(batch_size, -1) for v in self.values))


class Recurrent(nn.Module):
    """Runs any :class:`~recurrentkit.RecurrentCell` over a sequence.

    Args:
        cell: a registered cell name (``"lstm"``), an import path (``"my_package.cells:MinimalRNN"`` or
            ``"path/to/my_cells.py:MinimalRNN"``), a cell class or factory ``f(input_size, hidden_size, **kw)``, or a
            list of those, one per layer.
        input_size: features of the input.
        hidden_size: hidden units of every layer (a layer's entry in ``layer_kwargs`` may override it).
        num_layers: stacked layers; layer ``l+1`` reads layer ``l``'s outputs (both directions concatenated).
        bidirectional: add a backward cell per layer; it reads each sequence in reverse *within its length*.
        batch_first: input and output are ``[B, T, F]`` instead of ``[T, B, F]``.
        dropout: dropout on the outputs of every layer but the last (as ``torch.nn.LSTM``).
        residual: add each layer's input to its output from the second layer on (sizes must match).
        learn_initial_state: learn the initial state of every layer and direction instead of zeros.
        force_loop: never use the fused kernel (for testing, or to time the other paths).
        compile: ``torch.compile`` the step loop of cells that have no fused kernel, cached per input shape. Opt in:
            the first call of each shape costs 15-50 s of compilation.
        layer_kwargs: per-layer cell kwargs, merged over ``cell_kwargs``.
        **cell_kwargs: passed to every cell (``peepholes=True``, ``leak="learned"``, ...).

    ``forward(x, state=None, lengths=None)`` returns ``(outputs, final_state)``: outputs ``[T, B, D * output_size]``
    (zero at padded steps) and a list of ``num_layers * D`` cell states, layer-major as in ``torch.nn.LSTM``.
    Pass the final state back as ``state`` to continue the sequences (truncated BPTT; see :func:`detach_state`).

    Each layer runs on the path :func:`~recurrentkit.cells.kernels.choose_path` picks from what its cells declare
    (fused kernel, compiled loop, the cell's own kernel, :class:`~recurrentkit.cells.kernels.HoistedLoop`, step
    loop); padded batches take the same paths.
    """

    def __init__(self, cell: CellSpec | Sequence[CellSpec] = "lstm", input_size: int = 1, hidden_size: int = 1,
                 num_layers: int = 1, bidirectional: bool = False, batch_first: bool = False, dropout: float = 0.0,
                 residual: bool = False, learn_initial_state: bool = False, force_loop: bool = False,
                 compile: bool = False, layer_kwargs: Sequence[Mapping[str, Any]] | None = None,
                 **cell_kwargs: Any) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        specs = list(cell) if isinstance(cell, (list, tuple)) else [cell] * num_layers
        if len(specs) != num_layers:
            raise ValueError(f"got {len(specs)} cells for num_layers={num_layers}")
        layer_kwargs = list(layer_kwargs) if layer_kwargs is not None else [{}] * num_layers
        if len(layer_kwargs) != num_layers:
            raise ValueError(f"layer_kwargs has {len(layer_kwargs)} entries for num_layers={num_layers}")
        self.input_size, self.num_layers = input_size, num_layers
        self.num_directions = 2 if bidirectional else 1
        self.bidirectional, self.batch_first = bidirectional, batch_first
        self.dropout, self.residual = dropout, residual
        self.force_loop, self.compile = force_loop, compile

        self.layers = nn.ModuleList()
        layer_input = input_size
        for index, (spec, overrides) in enumerate(zip(specs, layer_kwargs)):
            kwargs = {**cell_kwargs, **overrides}
            size = kwargs.pop("hidden_size", hidden_size)
            cells = nn.ModuleList(self._build_cell(spec, layer_input, size, kwargs)
                                  for _ in range(self.num_directions))
            layer_output = cells[0].output_size * self.num_directions
            if residual and index > 0 and layer_output != layer_input:
                raise ValueError(f"residual connections need equal sizes, but layer {index} maps {layer_input} "
                                 f"features to {layer_output}")
            self.layers.append(cells)
            layer_input = layer_output
        self.output_size = layer_input
        self.initial_states = (nn.ModuleList(LearnedInitialState(c) for c in self.cells())
                               if learn_initial_state else None)
        self._compiled: dict[int, Callable] = {}

    @staticmethod
    def _build_cell(spec: CellSpec, input_size: int, hidden_size: int, kwargs: dict) -> RecurrentCell:
        if isinstance(spec, str):
            return create_cell(spec, input_size, hidden_size, **kwargs)
        if callable(spec):
            if isinstance(spec, type) and issubclass(spec, RecurrentCell):
                validate_cell_class(spec)
            built = spec(input_size, hidden_size, **kwargs)
            if not isinstance(built, RecurrentCell):
                raise TypeError(f"cell factory {spec!r} returned {type(built).__name__}, not a RecurrentCell")
            return validate_cell(built)
        raise TypeError(f"cell must be a registered name, an import path ('package.module:Class'), a cell class or "
                        f"a factory, got {type(spec).__name__}")

    def cells(self) -> list[RecurrentCell]:
        """All cells, layer-major, forward direction first (the order of the state list)."""
        return [cell for layer in self.layers for cell in layer]

    def initial_state(self, batch_size: int, *, device: torch.device | None = None,
                      dtype: torch.dtype | None = None) -> list[State]:
        """Zeros (or the learned initial state) for every layer and direction."""
        if self.initial_states is not None:
            return [init(batch_size) for init in self.initial_states]
        return [c.initial_state(batch_size, device=device, dtype=dtype) for c in self.cells()]

    def forward(self, x: Tensor, state: Sequence[State] | None = None, lengths: Tensor | Sequence[int] | None = None
                ) -> tuple[Tensor, list[State]]:
        if x.dim() != 3:
            raise ValueError(f"Recurrent expects a 3-D input [{'B, T' if self.batch_first else 'T, B'}, features], "
                             f"got shape {tuple(x.shape)}")
        if self.batch_first:
            x = x.transpose(0, 1)
        steps, batch, features = x.shape
        if features != self.input_size:
            raise ValueError(f"input has {features} features, the layer expects input_size={self.input_size}")
        lengths = self._check_lengths(lengths, steps, batch)
        if state is None:
            state = self.initial_state(batch, device=x.device, dtype=x.dtype)
        else:
            self._check_state(state, batch)
        mask = None if lengths is None else (torch.arange(steps, device=x.device).unsqueeze(1)
                                             < lengths.to(x.device).unsqueeze(0))
        if not self.force_loop and not self.residual and fused_stack_mode(self.layers) is not None:
            output, final = run_fused_stack(self.layers, x, state, lengths, self.training, self.dropout)
            return (output.transpose(0, 1) if self.batch_first else output), final
        final: list[State] = []
        layer_input = x
        for index, cells in enumerate(self.layers):
            if index > 0 and self.dropout > 0:
                layer_input = F.dropout(layer_input, self.dropout, self.training)
            states = state[index * self.num_directions:(index + 1) * self.num_directions]
            path = choose_path(cells, grad=records_grad(cells, layer_input, states), fused=not self.force_loop,
                               compile=self.compile)
            if path == "fused":
                output, new_states = run_fused_layer(cells, layer_input, states, lengths, self.training)
            else:
                outputs, new_states = [], []
                for direction, (cell, cell_state) in enumerate(zip(cells, states)):
                    out, new = self._run_cell(path, cell, layer_input, cell_state, lengths, mask,
                                              reverse=direction == 1)
                    outputs.append(out)
                    new_states.append(new)
                output = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
            if self.residual and index > 0:
                output = output + layer_input
                if mask is not None:
                    output = output * mask.unsqueeze(-1).to(output.dtype)
            final.extend(new_states)
            layer_input = output
        output = layer_input.transpose(0, 1) if self.batch_first else layer_input
        return output, final

    def _check_state(self, state: Sequence[State], batch: int) -> None:
        cells = self.cells()
        if len(state) != len(cells):
            raise ValueError(f"state must hold {len(cells)} cell states (num_layers * directions), got {len(state)}")
        for index, (cell, cell_state) in enumerate(zip(cells, state)):
            if not isinstance(cell_state, cell.state_type):
                raise TypeError(f"state[{index}] must be a {cell.state_type.__name__}, got {type(cell_state).__name__}")
            for field, tensor, size in zip(cell_state._fields, cell_state, cell.state_size):
                if tensor.shape != (batch, size):
                    raise ValueError(f"state[{index}].{field} has shape {tuple(tensor.shape)}, expected "
                                     f"{(batch, size)} (batch, state size)")

    def _check_lengths(self, lengths: Tensor | Sequence[int] | None, steps: int, batch: int) -> Tensor | None:
        if lengths is None:
            return None
        lengths = torch.as_tensor(lengths)
        if lengths.shape != (batch,):
            raise ValueError(f"lengths must have shape [{batch}] (one per sequence), got {tuple(lengths.shape)}")
        if lengths.is_floating_point():
            raise TypeError("lengths must be integers")
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > steps:
            raise ValueError(f"lengths must be in [1, {steps}] (the padded length), got min {low}, max {high}")
        return None if low == steps else lengths.long()

    def _run_cell(self, path: str, cell: RecurrentCell, x: Tensor, state: State, lengths: Tensor | None,
                  mask: Tensor | None, reverse: bool) -> tuple[Tensor, State]:
        if reverse:
            x = reverse_padded(x, lengths)
        if path == "compiled":
            output, state = self._compiled_loop(cell)(x, state, mask)
        else:
            output, state = run_path(path, cell, x, state, mask)
        if reverse:
            output = reverse_padded(output, lengths)
        return output, state

    def _compiled_loop(self, cell: RecurrentCell) -> Callable:
        key = id(cell)
        if key not in self._compiled:
            def loop(x: Tensor, state: State, mask: Tensor | None) -> tuple[Tensor, State]:
                return step_loop(cell, cell.project_input(x), state, mask)

            self._compiled[key] = torch.compile(loop, dynamic=False)
        return self._compiled[key]

    def extra_repr(self) -> str:
        parts = [f"input_size={self.input_size}", f"num_layers={self.num_layers}"]
        parts += [name for name in ("bidirectional", "batch_first", "residual", "force_loop", "compile")
                  if getattr(self, name)]
        if self.dropout:
            parts.append(f"dropout={self.dropout}")
        return ", ".join(parts)


def masked_loop(cell: RecurrentCell, x: Tensor, state: State, mask: Tensor) -> tuple[Tensor, State]:
    """The step loop for a padded batch (kept for compatibility; ``Recurrent`` now runs padded batches on the path
    :func:`~recurrentkit.cells.kernels.choose_path` picks). ``mask`` is [T, B]: padded steps keep the state and
    give zero outputs."""
    return step_loop(cell, cell.project_input(x), state, mask)
