"""Recurrent cells and their registry. Importing this package registers the built-in cells."""

from .base import RecurrentCell, State, detach_state, map_state
from .elman import ElmanCell, ElmanState
from .esn import ESNCell, ESNState
from .gru import GRUCell, GRUState
from .jordan import JordanCell, JordanState
from .leaky import LeakyCell, LeakyState
from .linear import LinearRecurrentCell, LinearState
from .lstm import LSTMCell, LSTMState
from .min_gru import MinGRUCell, MinGRUState
from .min_lstm import MinLSTMCell, MinLSTMState
from .registry import CellInfo, create_cell, get_cell_class, get_cell_info, list_cells, register_cell, unregister_cell
from .simplified_gru import SimplifiedGRUCell, SimplifiedGRUState

__all__ = [
    "RecurrentCell", "State", "detach_state", "map_state",
    "CellInfo", "create_cell", "get_cell_class", "get_cell_info", "list_cells", "register_cell", "unregister_cell",
    "ElmanCell", "ElmanState", "JordanCell", "JordanState", "LSTMCell", "LSTMState", "GRUCell", "GRUState",
    "MinGRUCell", "MinGRUState", "MinLSTMCell", "MinLSTMState", "LinearRecurrentCell", "LinearState",
    "SimplifiedGRUCell", "SimplifiedGRUState", "LeakyCell", "LeakyState", "ESNCell", "ESNState",
]
