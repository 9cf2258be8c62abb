"""The `recurrentkit` command: dispatch, errors, and the data-to-model links."""

import subprocess
import sys

import pytest

from recurrentkit import cli


def test_version_lists_the_cells(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    for name in ("elman", "jordan", "lstm", "gru", "mingru", "leaky", "esn"):
        assert name in out


def test_unknown_command_exits_2(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_generate_rejects_a_missing_checkpoint(tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli.main(["generate", "--ckpt_path", str(tmp_path / "nope.ckpt")])
    assert exc.value.code == 2


def test_console_script_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "recurrentkit", "cells"], capture_output=True, text=True,
                            check=True)
    assert "lstm" in result.stdout


def test_peek_reads_config_files_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  class_path: a.B\n  init_args: {}\ndata:\n  class_path: c.D\n")
    found = cli._peek_class_paths(["fit", "-c", str(recipe), "--model.class_path=e.F"])
    assert found == {"model": "e.F", "data": "c.D"}


def test_links_only_names_both_sides_have():
    class Data:
        vocab_size = property(lambda self: 7)

    class Model:
        def __init__(self, vocab_size: int, num_classes: int = 2):
            pass

    sys.modules[__name__].Data, sys.modules[__name__].Model = Data, Model
    assert cli._links_for(f"{__name__}.Model", f"{__name__}.Data") == ["vocab_size"]
    assert cli._links_for(f"{__name__}.Model", "no.such.Class") == []
