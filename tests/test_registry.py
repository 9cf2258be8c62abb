"""The cell registry, and a user-defined cell working everywhere a built-in one does."""

from __future__ import annotations

from typing import NamedTuple

import pytest
import torch
from torch import Tensor, nn

import recurrentkit as rk

BUILT_IN = ["elman", "esn", "gru", "jordan", "leaky", "lstm", "simplified_gru"]


def test_built_in_cells_are_registered():
    assert set(BUILT_IN) <= set(rk.list_cells())
    for name in BUILT_IN:
        cell = rk.create_cell(name, 3, 4)
        assert isinstance(cell, rk.RecurrentCell) and rk.get_cell_class(name) is type(cell)


def test_list_cells_fnmatch_and_natural_sort():
    names = ["zz_cell10", "zz_cell2", "zz_cell1"]
    for name in names:
        rk.register_cell(name)(type(name, (rk.get_cell_class("elman"),), {}))
    try:
        assert rk.list_cells("zz_cell*") == ["zz_cell1", "zz_cell2", "zz_cell10"]
        assert rk.list_cells("zz_cell?") == ["zz_cell1", "zz_cell2"]
        assert rk.list_cells() == sorted(rk.list_cells(), key=lambda n: [int(p) if p.isdigit() else p for p in
                                                                         __import__("re").split(r"(\d+)", n)])
    finally:
        for name in names:
            rk.unregister_cell(name)
    assert rk.list_cells("zz_cell*") == []
    assert rk.list_cells("*gru") == ["gru", "min_gru", "simplified_gru"]
    assert rk.list_cells("nothing-like-this*") == []


def test_unknown_name_is_a_key_error_naming_close_matches():
    with pytest.raises(KeyError, match="'lstm'") as info:
        rk.create_cell("lstn", 3, 4)
    assert "unknown cell 'lstn'" in str(info.value)
    with pytest.raises(KeyError, match="did you mean 'simplified_gru'"):
        rk.get_cell_info("simplified-gru")
    with pytest.raises(KeyError, match="Registered cells: elman"):
        rk.get_cell_class("qwertyuiop")
    with pytest.raises(KeyError):
        rk.unregister_cell("qwertyuiop")


def test_duplicate_and_invalid_registrations_raise():
    with pytest.raises(ValueError, match="already registered"):
        @rk.register_cell("lstm")
        class Impostor(rk.RecurrentCell):
            pass
    assert rk.get_cell_class("lstm").__name__ == "LSTMCell"
    with pytest.raises(ValueError, match="cell name"):
        rk.register_cell("has space")
    with pytest.raises(TypeError, match="RecurrentCell subclass"):
        rk.register_cell("not_a_cell")(nn.Linear)
    assert "not_a_cell" not in rk.list_cells()


def _state_class():
    from typing import NamedTuple as _NT

    return _NT("SomeState", [("h", Tensor)])


@pytest.mark.parametrize(("body", "message"), [
    ({}, "has no state_type"),
    ({"state_type": dict}, "state_type must be a NamedTuple class"),
    ({"state_type": "SomeState"}, "state_type must be a NamedTuple class"),
    ({"state_type": _state_class()}, "must implement project_input"),
    ({"state_type": _state_class(), "project_input": lambda self, x: x}, "must implement step"),
    ({"state_type": _state_class(), "project_input": lambda self, x: x, "recurrent_weight": lambda self: None},
     "must implement step"),
    ({"state_type": _state_class(), "project_input": lambda self, x: x, "step": lambda self, u, s: (u, s),
      "feedback": "hidden"}, "feedback must be"),
    ({"state_type": _state_class(), "project_input": lambda self, x: x, "step": lambda self, u, s: (u, s),
      "kernel": object}, "kernel must be a SequenceKernel"),
    ({"state_type": _state_class(), "project_input": lambda self, x: x, "step": lambda self, u, s: (u, s),
      "forward_sequence": lambda self, x, s: (x, s)}, "declare its whole-sequence loop"),
])
def test_registration_validates_the_class(body, message):
    cls = type("BrokenCell", (rk.RecurrentCell,), {"__module__": "user_cells", **body})
    with pytest.raises(TypeError, match=message) as info:
        rk.register_cell("broken_cell")(cls)
    assert "user_cells.BrokenCell" in str(info.value)  # the error names the class
    assert "broken_cell" not in rk.list_cells()
    with pytest.raises(TypeError, match=message):  # a class handed to Recurrent directly is checked the same way
        rk.Recurrent(cls, 3, 4)


def test_built_cells_are_checked_for_their_sizes():
    class TwoFields(NamedTuple):
        h: Tensor
        c: Tensor

    class ForgotStateSize(rk.get_cell_class("elman")):
        state_type = TwoFields  # two fields, but state_size still has one entry

    with pytest.raises(TypeError, match=r"ForgotStateSize.state_size must be a tuple of 2 positive ints"):
        rk.Recurrent(ForgotStateSize, 3, 4)
    rk.register_cell("forgot_state_size")(ForgotStateSize)
    try:
        with pytest.raises(TypeError, match="state_size"):
            rk.create_cell("forgot_state_size", 3, 4)
    finally:
        rk.unregister_cell("forgot_state_size")


def test_cell_info_reads_the_class_own_docstring():
    class Undocumented(rk.get_cell_class("elman")):
        pass

    class Documented(rk.get_cell_class("elman")):
        """My cell: ``h_t = tanh(W x_t + U h_{t-1})``.

        More text.
        """

    for name, cls in (("undocumented_cell", Undocumented), ("documented_cell", Documented)):
        rk.register_cell(name)(cls)
    try:
        assert rk.get_cell_info("undocumented_cell").summary == ""  # not ElmanCell's, inherited
        assert rk.get_cell_info("documented_cell").summary == "My cell: ``h_t = tanh(W x_t + U h_{t-1})``."
    finally:
        rk.unregister_cell("undocumented_cell")
        rk.unregister_cell("documented_cell")


def test_create_cell_reports_accepted_kwargs():
    with pytest.raises(TypeError, match="accepts: .*peepholes"):
        rk.create_cell("lstm", 3, 4, peephole=True)


def test_get_cell_info():
    info = rk.get_cell_info("lstm")
    assert info.name == "lstm" and info.cls.__name__ == "LSTMCell" and info.module == "recurrentkit.cells.lstm"
    assert info.feedback == "state" and info.trainable_recurrence
    assert info.parameters["peepholes"] is False and info.parameters["forget_bias"] == 1.0
    assert "LSTM" in info.summary and "\n" not in info.summary
    assert rk.get_cell_info("jordan").feedback == "output"
    assert rk.get_cell_info("esn").trainable_recurrence is False


# --- a user-defined cell ----------------------------------------------------------------------------------------------
class DecayState(NamedTuple):
    h: Tensor
    total: Tensor


class DecayCell(rk.RecurrentCell):
    """A test cell with two state fields: ``h_t = tanh(W x_t + U h_{t-1}) * s``, ``total_t = total_{t-1} + h_t``."""

    state_type = DecayState

    def __init__(self, input_size: int, hidden_size: int, scale: float = 0.5) -> None:
        super().__init__(input_size, hidden_size)
        self.state_size = (hidden_size, hidden_size)
        self.output_size = 2 * hidden_size
        self.scale = scale
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size) * 0.5)
        self.weight_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) * 0.5)

    def project_input(self, x: Tensor) -> Tensor:
        return x @ self.weight_ih.t()

    def step(self, u_t: Tensor, state: DecayState) -> tuple[Tensor, DecayState]:
        h = torch.tanh(u_t + state.h @ self.weight_hh.t()) * self.scale
        total = state.total + h
        return torch.cat([h, total], dim=-1), DecayState(h, total)


@pytest.fixture
def decay_cell():
    rk.register_cell("test_decay")(DecayCell)
    yield "test_decay"
    rk.unregister_cell("test_decay")


def _by_hand(cells, x: Tensor, n: int) -> tuple[Tensor, list[DecayState]]:
    """One layer (forward, and backward cell when given) on one unpadded sequence ``x[:n]`` [n, 1, I], step by step."""
    outs = []
    for direction, cell in enumerate(cells):
        seq = x[:n].flip(0) if direction == 1 else x[:n]
        state, ys = cell.initial_state(1), []
        for t in range(n):
            y, state = cell(seq[t], state)
            ys.append(y)
        ys = torch.stack(ys)
        outs.append((ys.flip(0) if direction == 1 else ys, state))
    return torch.cat([o for o, _ in outs], dim=-1), [s for _, s in outs]


def test_user_cell_works_like_a_built_in(decay_cell):
    assert decay_cell in rk.list_cells() and rk.get_cell_info(decay_cell).cls is DecayCell
    assert rk.get_cell_info(decay_cell).parameters["scale"] == 0.5
    layer = rk.Recurrent(decay_cell, 3, 4, num_layers=2, bidirectional=True, scale=0.8)
    assert layer.output_size == 2 * 2 * 4 and all(c.scale == 0.8 for c in layer.cells())
    x, lengths = torch.randn(6, 3, 3), [6, 2, 4]
    out, final = layer(x, lengths=lengths)
    assert out.shape == (6, 3, 16) and len(final) == 4
    for b, n in enumerate(lengths):  # the ground truth: each sequence alone, layer by layer, by hand
        seq = x[:, b:b + 1]
        states = []
        for cells in layer.layers:
            seq, layer_states = _by_hand(list(cells), seq, n)
            states += layer_states
        torch.testing.assert_close(out[:n, b:b + 1], seq)
        assert out[n:, b].abs().max() == 0 if n < 6 else True
        for ours, expected in zip(final, states):
            torch.testing.assert_close(ours.total[b:b + 1], expected.total)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())


def test_unregistered_user_cell_is_gone(decay_cell):
    rk.unregister_cell(decay_cell)
    with pytest.raises(KeyError):
        rk.Recurrent(decay_cell, 3, 4)
    rk.register_cell(decay_cell)(DecayCell)  # the fixture unregisters it again
