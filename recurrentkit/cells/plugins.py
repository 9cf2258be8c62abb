"""Cells from outside the package: import paths (``"pkg.module:Class"``, ``"path/to/file.py:Class"``) and the
``recurrentkit.cells`` entry-point group of installed packages."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

ENTRY_POINT_GROUP = "recurrentkit.cells"

_loaded_entry_points: set[tuple[str, str]] = set()
entry_point_errors: dict[str, Exception] = {}  # cell name -> why its entry point failed to load


def is_import_path(spec: str) -> bool:
    """Whether ``spec`` names a class by import path (``module:Class`` or ``file.py:Class``), not a registered name."""
    return isinstance(spec, str) and ":" in spec.strip(":")


def import_object(spec: str) -> Any:
    """The object that ``"package.module:Attr"`` or ``"path/to/file.py:Attr"`` names (``Attr`` may be dotted).

    A module name is imported as Python imports it; when it is not found, the current directory is searched too
    (appended to ``sys.path``), because the ``recurrentkit`` console script, unlike ``python -m``, does not put it
    there. A file is loaded on its own, once per resolved path, under a module name made from that path.
    """
    module_part, _, attribute = spec.rpartition(":")
    if not module_part or not attribute:
        raise ValueError(f"an import path looks like 'package.module:Class' or 'path/to/file.py:Class', got {spec!r}")
    module = _load_file(module_part, spec) if _is_file(module_part) else _import_module(module_part, spec)
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise AttributeError(f"{spec!r}: {module.__name__} ({getattr(module, '__file__', '?')}) has no "
                                 f"attribute {attribute!r}") from None
    return target


def _is_file(module_part: str) -> bool:
    return module_part.endswith(".py") or "/" in module_part or os.sep in module_part


def _import_module(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if not (name == missing or name.startswith(missing + ".")):
            raise  # the module exists but one of its own imports is missing
        cwd = os.getcwd()
        if cwd in sys.path or "" in sys.path or not _findable_in(cwd, name):
            raise ModuleNotFoundError(
                f"cannot import {name!r} for the cell {spec!r}: it is neither on sys.path nor in the current "
                f"directory ({cwd}). Install its package, add its folder to PYTHONPATH, or name the file: "
                f"'path/to/{name.split('.')[-1]}.py:{spec.rpartition(':')[2]}'", name=name) from err
        sys.path.append(cwd)  # appended: it never shadows an installed package
        return importlib.import_module(name)


def _findable_in(folder: str, name: str) -> bool:
    top = Path(folder, name.split(".")[0])
    return top.with_suffix(".py").is_file() or (top / "__init__.py").is_file() or top.is_dir()


def _load_file(path_text: str, spec: str) -> ModuleType:
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"cell file not found: {path} (from {spec!r})")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"_recurrentkit_cells_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    file_spec = importlib.util.spec_from_file_location(module_name, path)
    if file_spec is None or file_spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module (from {spec!r})")
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[module_name] = module  # before running it, as import does (dataclasses, pickling look it up)
    try:
        file_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def load_entry_points() -> list[str]:
    """Load every not yet loaded ``recurrentkit.cells`` entry point; returns the names of those loaded now.

    An entry point ``name = "package.module:Class"`` registers ``Class`` as ``name`` (unless importing the module
    already registered it); ``name = "package.module"`` just imports the module, whose ``@register_cell``
    decorators register its cells. A plug-in that fails to load is reported with a warning, and again (as the cause)
    when its name is looked up.
    """
    from .registry import _CELLS, register_cell  # the registry calls this module lazily, and vice versa

    loaded = []
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (entry.name, entry.value)
        if key in _loaded_entry_points:
            continue
        _loaded_entry_points.add(key)
        try:
            target = entry.load()
            if isinstance(target, type) and entry.name not in _CELLS:
                register_cell(entry.name)(target)
        except Exception as err:  # noqa: BLE001 - one broken plug-in must not stop the others
            distribution = getattr(getattr(entry, "dist", None), "name", "?")
            entry_point_errors[entry.name] = err
            warnings.warn(f"recurrentkit: the cell plug-in {entry.name!r} = {entry.value!r} (from {distribution}) "
                          f"failed to load: {type(err).__name__}: {err}", stacklevel=2)
            continue
        loaded.append(entry.name)
    return loaded
