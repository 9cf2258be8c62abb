"""recurrentkit: pluggable recurrent cells, a ``Recurrent`` layer that runs any of them, and Lightning tasks.

>>> import recurrentkit as rk
>>> rk.list_cells()  # doctest: +ELLIPSIS
['elman', 'esn', 'gru', 'jordan', 'leaky', 'lstm', 'mingru'...]
"""

from .cells import (
    CellInfo,
    RecurrentCell,
    State,
    create_cell,
    detach_state,
    get_cell_class,
    get_cell_info,
    list_cells,
    register_cell,
    unregister_cell,
)
from .nn import Recurrent

__version__ = "0.1.0"

__all__ = [
    "CellInfo",
    "Recurrent",
    "RecurrentCell",
    "State",
    "__version__",
    "create_cell",
    "detach_state",
    "get_cell_class",
    "get_cell_info",
    "list_cells",
    "register_cell",
    "unregister_cell",
]
