"""Cell registry: ``register_cell`` / ``create_cell`` / ``list_cells`` / ``get_cell_info`` (after timm's).

Wherever a registered name is accepted, so is an import path, ``"package.module:Class"`` or
``"path/to/file.py:Class"``; installed packages add cells through the ``recurrentkit.cells`` entry-point group,
loaded on the first lookup of an unknown name (and by :func:`list_cells`). See :mod:`recurrentkit.cells.plugins`.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import RecurrentCell
from .kernels import KERNEL_WHEN, SequenceKernel
from .plugins import entry_point_errors, import_object, is_import_path, load_entry_points

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
        validate_cell_class(cls)
        _CELLS[name] = cls
        cls.cell_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method) is not getattr(RecurrentCell, method)


def validate_cell_class(cls: type[RecurrentCell]) -> None:
    """Raise ``TypeError`` naming ``cls`` when it cannot work as a cell (checked by :func:`register_cell`).

    A cell class has a ``state_type`` that is a ``NamedTuple`` class, implements ``project_input`` and either
    ``step`` or ``recurrent_weight`` + ``pointwise``, declares ``feedback`` as ``"state"`` or ``"output"``, and
    declares a ``kernel`` (if any) as a :class:`~recurrentkit.cells.kernels.SequenceKernel` subclass.
    """
    where = f"{cls.__module__}.{cls.__qualname__}"
    state_type = getattr(cls, "state_type", None)
    if state_type is None:
        raise TypeError(f"{where} has no state_type: set the class attribute state_type to the NamedTuple class of "
                        f"its state, e.g. `class MyState(NamedTuple): h: Tensor` and `state_type = MyState`")
    if not (isinstance(state_type, type) and issubclass(state_type, tuple) and hasattr(state_type, "_fields")):
        raise TypeError(f"{where}.state_type must be a NamedTuple class, got {state_type!r}")
    if not state_type._fields:
        raise TypeError(f"{where}.state_type ({state_type.__name__}) has no fields; a state holds at least one tensor")
    if not _overrides(cls, "project_input"):
        raise TypeError(f"{where} must implement project_input(x), the input part of the update: [T, B, I] -> "
                        f"[T, B, *]")
    if not _overrides(cls, "step") and not (_overrides(cls, "recurrent_weight") and _overrides(cls, "pointwise")):
        raise TypeError(f"{where} must implement step(u_t, state), or recurrent_weight() and pointwise(u_t, r_t, "
                        f"state)")
    if cls.feedback not in ("state", "output"):
        raise TypeError(f"{where}.feedback must be 'state' or 'output', got {cls.feedback!r}")
    kernel = cls.kernel
    if kernel is not None:
        if not (isinstance(kernel, type) and issubclass(kernel, SequenceKernel)):
            raise TypeError(f"{where}.kernel must be a SequenceKernel subclass or None, got {kernel!r}")
        if kernel.when not in KERNEL_WHEN:
            raise TypeError(f"{where}.kernel ({kernel.__name__}).when must be one of {KERNEL_WHEN}, got "
                            f"{kernel.when!r}")
    if _overrides(cls, "forward_sequence"):
        raise TypeError(f"{where} overrides forward_sequence, which Recurrent does not call: declare its "
                        f"whole-sequence loop as `kernel = MyKernel` (a SequenceKernel subclass) instead")


def validate_cell(cell: RecurrentCell) -> RecurrentCell:
    """Check a built cell's sizes against its state type (``create_cell`` and ``Recurrent`` call this)."""
    where = type(cell).__qualname__
    sizes = getattr(cell, "state_size", None)
    fields = cell.state_type._fields
    if not (isinstance(sizes, tuple) and len(sizes) == len(fields)
            and all(isinstance(n, int) and n > 0 for n in sizes)):
        raise TypeError(f"{where}.state_size must be a tuple of {len(fields)} positive ints, one per field of "
                        f"{cell.state_type.__name__}{fields}, got {sizes!r}")
    output = getattr(cell, "output_size", None)
    if not (isinstance(output, int) and output > 0):
        raise TypeError(f"{where}.output_size must be a positive int, got {output!r}")
    return cell


def unregister_cell(name: str) -> None:
    """Remove a cell from the registry (mainly for tests and notebooks that redefine a cell)."""
    _lookup(name)
    del _CELLS[name]


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def list_cells(pattern: str = "*") -> list[str]:
    """Registered cell names matching an fnmatch ``pattern``, naturally sorted (installed plug-ins included)."""
    load_entry_points()
    return sorted((n for n in _CELLS if fnmatch.fnmatch(n, pattern)), key=_natural_key)


def _lookup(name: str) -> type[RecurrentCell]:
    """The class registered as ``name``, or named by the import path ``name``; plug-ins load on a miss."""
    if name in _CELLS:
        return _CELLS[name]
    if is_import_path(name):
        cls = import_object(name)
        if not (isinstance(cls, type) and issubclass(cls, RecurrentCell)):
            raise TypeError(f"{name!r} names {cls!r}, not a RecurrentCell subclass")
        if cls not in _CELLS.values():
            validate_cell_class(cls)
        return cls
    load_entry_points()
    if name in _CELLS:
        return _CELLS[name]
    if name in entry_point_errors:
        raise KeyError(f"the cell plug-in {name!r} failed to load: {entry_point_errors[name]}") \
            from entry_point_errors[name]
    close = difflib.get_close_matches(str(name), list(_CELLS), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise KeyError(f"unknown cell {name!r}{hint} Registered cells: {', '.join(list_cells())}. A cell outside the "
                   f"package is named by its import path, 'package.module:Class' or 'path/to/file.py:Class'")


def get_cell_class(name: str) -> type[RecurrentCell]:
    """The class registered under ``name``, or named by the import path ``name`` (``"pkg.module:Class"``)."""
    return _lookup(name)


def create_cell(name: str, input_size: int, hidden_size: int, **kwargs: Any) -> RecurrentCell:
    """Instantiate the cell registered under ``name`` or named by its import path (``"pkg.module:Class"``)."""
    cls = _lookup(name)
    try:
        cell = cls(input_size, hidden_size, **kwargs)
    except TypeError as err:
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "input_size",
                                                                                          "hidden_size")]
        raise TypeError(f"create_cell({name!r}): {err}. {cls.__name__} accepts: {', '.join(accepted)}") from err
    return validate_cell(cell)


def get_cell_info(name: str) -> CellInfo:
    """Class, docstring summary, feedback kind and constructor defaults of a registered cell."""
    cls = _lookup(name)
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")  # the class's own docstring, never an inherited one
    params = {
        p.name: (p.default if p.default is not inspect.Parameter.empty else None)
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name not in ("self",) and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    return CellInfo(name=name, cls=cls, module=cls.__module__, summary=doc.split("\n\n")[0].replace("\n", " "),
                    feedback=cls.feedback, trainable_recurrence=cls.trainable_recurrence, parameters=params)
