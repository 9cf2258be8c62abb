"""Cell registry: ``register_cell`` / ``create_cell`` / ``list_cells`` / ``get_cell_info`` (after timm's)."""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import RecurrentCell

_CELLS: dict[str, type[RecurrentCell]] = {}


@dataclass(frozen=True)
class CellInfo:
    """What the registry knows about one cell."""

    name: str
    cls: type[RecurrentCell]
    module: str
    summary: str
    feedback: str
    trainable_recurrence: bool
    parameters: dict[str, Any]


def register_cell(name: str) -> Callable[[type[RecurrentCell]], type[RecurrentCell]]:
    """Class decorator registering a :class:`RecurrentCell` subclass under ``name``.

    >>> @register_cell("my_cell")            # doctest: +SKIP
    ... class MyCell(RecurrentCell): ...
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise ValueError(f"cell name must be a non-empty identifier-like string, got {name!r}")

    def decorator(cls: type[RecurrentCell]) -> type[RecurrentCell]:
        if not (isinstance(cls, type) and issubclass(cls, RecurrentCell)):
            raise TypeError(f"@register_cell({name!r}) must decorate a RecurrentCell subclass, got {cls!r}")
        if name in _CELLS and _CELLS[name] is not cls:
            raise ValueError(f"a cell named {name!r} is already registered ({_CELLS[name].__module__}."
                             f"{_CELLS[name].__qualname__}); pick another name or unregister_cell({name!r}) first")
        _CELLS[name] = cls
        cls.cell_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def unregister_cell(name: str) -> None:
    """Remove a cell from the registry (mainly for tests and notebooks that redefine a cell)."""
    _lookup(name)
    del _CELLS[name]


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def list_cells(pattern: str = "*") -> list[str]:
    """Registered cell names matching an fnmatch ``pattern``, naturally sorted."""
    return sorted((n for n in _CELLS if fnmatch.fnmatch(n, pattern)), key=_natural_key)


def _lookup(name: str) -> type[RecurrentCell]:
    try:
        return _CELLS[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_CELLS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"unknown cell {name!r}{hint} Registered cells: {', '.join(list_cells())}") from None


def get_cell_class(name: str) -> type[RecurrentCell]:
    """The class registered under ``name``."""
    return _lookup(name)


def create_cell(name: str, input_size: int, hidden_size: int, **kwargs: Any) -> RecurrentCell:
    """Instantiate the cell registered under ``name``."""
    cls = _lookup(name)
    try:
        return cls(input_size, hidden_size, **kwargs)
    except TypeError as err:
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "input_size",
                                                                                          "hidden_size")]
        raise TypeError(f"create_cell({name!r}): {err}. {cls.__name__} accepts: {', '.join(accepted)}") from err


def get_cell_info(name: str) -> CellInfo:
    """Class, docstring summary, feedback kind and constructor defaults of a registered cell."""
    cls = _lookup(name)
    doc = inspect.getdoc(cls) or ""
    params = {
        p.name: (p.default if p.default is not inspect.Parameter.empty else None)
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in ("self",) and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    return CellInfo(name=name, cls=cls, module=cls.__module__, summary=doc.split("\n\n")[0].replace("\n", " "),
                    feedback=cls.feedback, trainable_recurrence=cls.trainable_recurrence, parameters=params)
