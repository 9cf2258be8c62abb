"""Reading checkpoints with errors that name the file, and comparing a checkpoint's model settings with the
configuration (recipe and command line) that a ``--ckpt_path`` run was given.

LightningCLI, given ``--ckpt_path``, quietly replaces the configured model settings with the checkpoint's
hyperparameters. :func:`compare_settings` lists every setting on which the two disagree and whether it changes the
shapes of the weights (found by building the configured model on the ``meta`` device and comparing its parameter
shapes with the checkpoint's ``state_dict``, so nothing is guessed from names).
"""

from __future__ import annotations

import importlib
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import UserError

#: what ``--ckpt_settings`` accepts: who wins when the configuration and the checkpoint disagree
POLICIES = ("error", "checkpoint", "config")


class CheckpointError(UserError, ValueError):
    """A checkpoint file that cannot be used, or settings that contradict it."""


def load_checkpoint(path: str | Path, map_location: str = "cpu", weights_only: bool = True) -> dict[str, Any]:
    """``torch.load`` a Lightning checkpoint, with an error naming the file when it is missing, empty, truncated or
    not a checkpoint at all."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): it was not written completely; use an older "
                              "checkpoint, or train again")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=weights_only)
    except (EOFError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as error:
        # (torch's own text suggests weights_only=False, which would not help a file that is not a checkpoint)
        raise CheckpointError(f"{path} ({size} bytes) is not a readable PyTorch checkpoint: it is truncated or "
                              f"not a checkpoint file ({type(error).__name__})") from None
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is a PyTorch file but not a Lightning checkpoint (no 'state_dict' entry)")
    return dict(checkpoint)


@dataclass
class SettingsReport:
    """The settings on which a checkpoint and the configuration disagree."""

    differences: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (checkpoint, configuration)
    class_paths: tuple[str, str] | None = None  # (checkpoint, configuration) when the model class differs
    shape_changes: list[str] = field(default_factory=list)  # "name: [512, 32] in the checkpoint, [64, 32] here"

    @property
    def changes_shapes(self) -> bool:
        return bool(self.shape_changes) or self.class_paths is not None

    def describe(self, path: str | Path) -> str:
        lines = [f"--ckpt_path {path}: the configuration (recipe and command line) differs from the checkpoint:"]
        if self.class_paths is not None:
            lines.append(f"  model class: {self.class_paths[0]} in the checkpoint, {self.class_paths[1]} configured")
        for name, (saved, configured) in sorted(self.differences.items()):
            lines.append(f"  {name}: {saved!r} in the checkpoint, {configured!r} configured")
        if self.shape_changes:
            shown = self.shape_changes[:4] + ([f"... {len(self.shape_changes) - 4} more"]
                                              if len(self.shape_changes) > 4 else [])
            lines.append("  these change the shapes of the weights: " + "; ".join(shown))
        return "\n".join(lines)


def _plain(value: Any) -> Any:
    """Namespaces and tuples as dicts and lists, so configured and saved values compare equal when they are."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _configured_shapes(model_class: type, kwargs: dict[str, Any]) -> dict[str, tuple[int, ...]] | None:
    """Parameter and buffer shapes of ``model_class(**kwargs)`` built on the meta device (``None`` if it can't be)."""
    try:
        with torch.device("meta"):
            model = model_class(**kwargs)
    except Exception:  # noqa: BLE001 - a model that can't be built here is compared by settings only
        return None
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def compare_settings(checkpoint: Mapping[str, Any], class_path: str | None, init_args: Mapping[str, Any],
                     skip: tuple[str, ...] = ()) -> SettingsReport:
    """Compare ``checkpoint["hyper_parameters"]`` with the configured ``class_path`` and ``init_args``.

    ``skip`` names settings filled in later (the data-to-model links, e.g. ``vocab_size``): they are compared only
    through the shapes. Settings the checkpoint does not record (the optimizer, say) are not compared.
    """
    saved = dict(checkpoint.get("hyper_parameters") or {})
    saved.pop("_instantiator", None)
    saved_class = saved.pop("_class_path", None)
    report = SettingsReport()
    if saved_class and class_path and saved_class != class_path:
        report.class_paths = (saved_class, class_path)
        return report
    configured = _plain(init_args) or {}
    for name, value in saved.items():
        if name in skip or name not in configured:
            continue
        if _plain(value) != configured[name]:
            report.differences[name] = (_plain(value), configured[name])
    if not report.differences or not class_path:
        return report
    module_name, _, attribute = class_path.rpartition(".")
    try:  # the library never imports the CLI layer (tests/test_task_conventions.py)
        model_class = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        model_class = None
    state = checkpoint.get("state_dict") or {}
    shapes = None
    if model_class is not None:
        kwargs = {k: v for k, v in configured.items() if k in saved or v is not None}
        kwargs.update({k: saved[k] for k in skip if k in saved})  # linked sizes: the checkpoint's
        shapes = _configured_shapes(model_class, kwargs)
    if shapes is None:  # unknown: treat every difference as one that may change shapes
        report.shape_changes = ["(the configured model could not be built to compare shapes)"]
        return report
    for name, tensor in state.items():
        here = shapes.get(name)
        if here is None:
            report.shape_changes.append(f"{name} is in the checkpoint only")
        elif tuple(tensor.shape) != here:
            report.shape_changes.append(f"{name}: {list(tensor.shape)} in the checkpoint, {list(here)} configured")
    report.shape_changes += [f"{name} is configured only" for name in shapes if name not in state]
    return report


__all__ = ["POLICIES", "CheckpointError", "SettingsReport", "compare_settings", "load_checkpoint"]
