"""Cells from outside the package: import paths (module or file) and the `recurrentkit.cells` entry-point group."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import recurrentkit as rk
from recurrentkit.testing import check_cell

ROOT = Path(__file__).resolve().parents[1]

# Chen (2017), "MinimalRNN": z_t = W x_t (hoisted), u_t = σ(U h_{t-1} + V z_t + b), h_t = u_t ⊙ h_{t-1} + (1-u_t) ⊙ z_t
MINIMAL_RNN = '''
from typing import NamedTuple

import torch
from torch import Tensor, nn

import recurrentkit as rk


class MinimalRNNState(NamedTuple):
    h: Tensor


{decorator}
class MinimalRNN(rk.RecurrentCell):
    """MinimalRNN (Chen 2017): ``h_t = u_t * h_{{t-1}} + (1 - u_t) * z_t`` with ``z_t = tanh(W x_t)``."""

    state_type = MinimalRNNState

    def __init__(self, input_size: int, hidden_size: int, gate_bias: float = 1.0) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.randn(hidden_size, input_size) / input_size ** 0.5)
        self.weight_hh = nn.Parameter(torch.randn(hidden_size, hidden_size) / hidden_size ** 0.5)
        self.weight_zh = nn.Parameter(torch.randn(hidden_size, hidden_size) / hidden_size ** 0.5)
        self.bias = nn.Parameter(torch.full((hidden_size,), float(gate_bias)))

    def project_input(self, x: Tensor) -> Tensor:
        z = torch.tanh(x @ self.weight_ih.t())
        return torch.cat([z, z @ self.weight_zh.t() + self.bias], dim=-1)

    def recurrent_weight(self) -> Tensor:
        return self.weight_hh

    def pointwise(self, u_t: Tensor, r_t: Tensor, state: MinimalRNNState):
        z, gate_input = u_t.chunk(2, dim=-1)
        h = torch.lerp(z, state.h, torch.sigmoid(gate_input + r_t))
        return h, MinimalRNNState(h)
'''


def _write(path: Path, decorator: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MINIMAL_RNN.format(decorator=decorator))
    return path


@pytest.fixture
def forget_modules():
    """Unregister the cells and drop the modules a test imports, so tests don't leak into each other."""
    before_cells, before_modules = set(rk.list_cells()), set(sys.modules)
    yield
    for name in set(rk.list_cells()) - before_cells:
        rk.unregister_cell(name)
    for name in set(sys.modules) - before_modules:
        if "minimal" in name or "rk_plugin" in name or "_recurrentkit_cells_" in name:
            del sys.modules[name]


def test_module_import_path(tmp_path, monkeypatch, forget_modules):
    _write(tmp_path / "rk_test_pkg_a" / "__init__.py")
    _write(tmp_path / "rk_test_pkg_a" / "minimal_cells.py", decorator='@rk.register_cell("minimal_rnn_a")')
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = "rk_test_pkg_a.minimal_cells:MinimalRNN"
    cls = rk.get_cell_class(spec)
    assert cls.__name__ == "MinimalRNN" and rk.get_cell_class("minimal_rnn_a") is cls  # importing registered it
    layer = rk.Recurrent(spec, 3, 4, num_layers=2, bidirectional=True, gate_bias=0.5)
    assert all(type(c) is cls and torch.all(c.bias == 0.5) for c in layer.cells())
    assert layer(torch.randn(5, 2, 3), lengths=[5, 2])[0].shape == (5, 2, 8)
    assert type(rk.create_cell(spec, 3, 4)) is cls
    info = rk.get_cell_info(spec)
    assert info.name == spec and info.summary.startswith("MinimalRNN (Chen 2017)") and info.parameters["gate_bias"] == 1
    assert check_cell(spec)[-1] == "padded batch"
    with pytest.raises(AttributeError, match="has no attribute 'MaximalRNN'"):
        rk.get_cell_class("rk_test_pkg_a.minimal_cells:MaximalRNN")
    with pytest.raises(TypeError, match="not a RecurrentCell subclass"):
        rk.get_cell_class("rk_test_pkg_a.minimal_cells:MinimalRNNState")
    with pytest.raises(ModuleNotFoundError, match="neither on sys.path nor in the current directory"):
        rk.get_cell_class("rk_no_such_package_anywhere:Cell")


def test_file_import_path_is_loaded_once(tmp_path, monkeypatch, forget_modules):
    path = _write(tmp_path / "elsewhere" / "my_cells.py")  # not registered: the class is used as it is
    spec = f"{path}:MinimalRNN"
    cls = rk.get_cell_class(spec)
    assert cls.__name__ == "MinimalRNN" and cls not in [rk.get_cell_class(n) for n in rk.list_cells()]
    assert rk.get_cell_class(spec) is cls  # the file runs once: a second lookup gives the same class
    monkeypatch.chdir(tmp_path)
    assert rk.get_cell_class("elsewhere/my_cells.py:MinimalRNN") is cls  # relative to the current directory
    assert type(rk.Recurrent(spec, 3, 4).cells()[0]) is cls
    with pytest.raises(FileNotFoundError, match="cell file not found"):
        rk.get_cell_class("elsewhere/no_cells.py:MinimalRNN")


def test_module_in_the_current_directory_is_found_without_sys_path(tmp_path, monkeypatch, forget_modules):
    _write(tmp_path / "rk_minimal_cwd_cells.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path), os.getcwd())])
    cls = rk.get_cell_class("rk_minimal_cwd_cells:MinimalRNN")  # as under the console script: cwd not on sys.path
    assert cls.__name__ == "MinimalRNN" and sys.path[-1] == str(tmp_path)  # appended, never shadowing


def _install_plugin(site: Path, dist: str, entry_points: str) -> None:
    """A throwaway installed distribution: a package plus a .dist-info with entry_points.txt, on ``site``."""
    info = site / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[recurrentkit.cells]\n{textwrap.dedent(entry_points)}")


def test_entry_point_plugins_register_on_first_lookup(tmp_path, monkeypatch, forget_modules):
    site = tmp_path / "site"
    _write(site / "rk_plugin_demo" / "__init__.py")
    _write(site / "rk_plugin_demo" / "decorated.py", decorator='@rk.register_cell("plugin_decorated")')
    _install_plugin(site, "rk_plugin_demo", """
        plugin_minimal = rk_plugin_demo:MinimalRNN
        plugin_decorated = rk_plugin_demo.decorated
        plugin_broken = rk_plugin_demo:NoSuchClass
    """)
    monkeypatch.syspath_prepend(str(site))
    assert "rk_plugin_demo" not in sys.modules
    with pytest.warns(UserWarning, match="plugin_broken"):
        cell = rk.create_cell("plugin_minimal", 3, 4)  # an unknown name loads the plug-ins, then is found
    assert type(cell).__name__ == "MinimalRNN" and rk.get_cell_class("plugin_minimal") is type(cell)
    assert {"plugin_minimal", "plugin_decorated"} <= set(rk.list_cells())
    assert rk.Recurrent("plugin_decorated", 3, 4)(torch.randn(2, 1, 3))[0].shape == (2, 1, 4)
    with pytest.raises(KeyError, match="plug-in 'plugin_broken' failed to load") as info:
        rk.create_cell("plugin_broken", 3, 4)
    assert isinstance(info.value.__cause__, AttributeError)


def test_the_command_loads_plugins_at_start(tmp_path, monkeypatch, capsys, forget_modules):
    from recurrentkit import cli

    site = tmp_path / "site"
    _write(site / "rk_plugin_cli" / "__init__.py")
    _install_plugin(site, "rk_plugin_cli", "plugin_cli_minimal = rk_plugin_cli:MinimalRNN\n")
    monkeypatch.syspath_prepend(str(site))
    assert cli.main(["cells"]) == 0
    assert "plugin_cli_minimal" in capsys.readouterr().out


def test_unknown_name_suggests_an_import_path():
    with pytest.raises(KeyError, match="'package.module:Class' or 'path/to/file.py:Class'"):
        rk.create_cell("no_such_cell_here", 3, 4)


@pytest.mark.parametrize("form", ["file", "module"])
def test_cli_trains_a_cell_defined_outside_the_package(form, tmp_path, monkeypatch, forget_modules):
    """`recurrentkit fit -c recipes/debug/tiny-lm.yaml --model.init_args.cell=<file or module>:MinimalRNN`."""
    from recurrentkit import cli

    path = _write(tmp_path / "user" / "rk_minimal_user_cells.py")
    monkeypatch.chdir(tmp_path / "user")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path / "user"))])
    spec = f"{path}:MinimalRNN" if form == "file" else "rk_minimal_user_cells:MinimalRNN"
    recipe = ROOT / "recipes" / "debug" / "tiny-lm.yaml"
    trained = []
    original = rk.Recurrent.forward

    def spy(self, *args, **kwargs):
        trained.extend(type(c).__name__ for c in self.cells())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(rk.Recurrent, "forward", spy)
    assert cli.main(["fit", "-c", str(recipe), f"--model.init_args.cell={spec}", "--trainer.fast_dev_run=true",
                     "--trainer.enable_progress_bar=false"]) == 0
    assert trained and set(trained) == {"MinimalRNN"}
