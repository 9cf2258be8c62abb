"""The `recurrentkit` command: dispatch, errors, and the data-to-model links."""

import subprocess
import sys
from pathlib import Path

import pytest

from recurrentkit import cli
from recurrentkit.cli import lightning


def test_version_lists_the_cells(capsys):
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    for name in ("elman", "jordan", "lstm", "gru", "simplified_gru", "leaky", "esn"):
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
    found = lightning._peek_class_paths(["fit", "-c", str(recipe), "--model.class_path=e.F"])
    assert found == {"model": "e.F", "data": "c.D"}


def test_links_only_names_both_sides_have():
    class Data:
        vocab_size = property(lambda self: 7)

    class Model:
        def __init__(self, vocab_size: int, num_classes: int = 2):
            pass

    sys.modules[__name__].Data, sys.modules[__name__].Model = Data, Model
    assert lightning._links_for(f"{__name__}.Model", f"{__name__}.Data") == ["vocab_size"]
    assert lightning._links_for(f"{__name__}.Model", "no.such.Class") == []


def test_fit_then_predict_writes_a_tsv(tmp_path, monkeypatch):
    """`recurrentkit predict -c ... --ckpt_path ... --data.init_args.predict_file new.txt` writes a TSV."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("RK_DATA_DIR", str(root / "tests" / "fixtures" / "fake_data"))
    monkeypatch.chdir(tmp_path)
    recipe = str(root / "recipes" / "sst2" / "gru.yaml")
    small = ["--model.init_args.hidden_size=8", "--model.init_args.embedding_size=8", "--trainer.max_epochs=1",
             "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.default_root_dir=run"]
    assert cli.main(["fit", "-c", recipe, *small]) == 0
    checkpoint = next(Path("run").rglob("*.ckpt"))
    texts = tmp_path / "new.txt"
    texts.write_text("a cat sat good\nthe dog ran awful\nbig red house\n")
    assert cli.main(["predict", "-c", recipe, *small, "--ckpt_path", str(checkpoint),
                     "--data.init_args.predict_file", str(texts)]) == 0
    rows = (tmp_path / "new.predictions.tsv").read_text().strip().split("\n")
    assert rows[0].split("\t")[:3] == ["index", "label", "confidence"]
    assert [r.split("\t")[-1] for r in rows[1:]] == texts.read_text().strip().split("\n")


def test_threads_option_sets_torch_threads(tmp_path, monkeypatch):
    import torch

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    try:
        cli.build_cli(["-c", str(root / "recipes" / "reservoir" / "sine-transform.yaml"), "--threads", "2"],
                      run=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_parse_recipe_then_instantiate_model_without_data():
    """Programs (benchmarks) build a recipe's task through the command's own parser, giving the linked sizes."""
    root = Path(__file__).resolve().parents[1]
    config = lightning.parse_recipe(["-c", str(root / "recipes" / "debug" / "tiny-lm.yaml"),
                                     "--model.init_args.cell=gru"])
    assert config.model.init_args.hidden_size == 32
    task = lightning.instantiate_model(config, vocab_size=11)
    assert task.model.vocab_size == 11 and task.model.cell_name == "gru"
    optimizer = task.configure_optimizers()
    assert type(optimizer).__name__ == "Adam" and optimizer.defaults["lr"] == 0.01


def test_yaml_numbers_are_typed_by_the_signature(tmp_path):
    """`1e-5` (which plain YAML 1.1 reads as a string) reaches a float argument as the float 1e-5."""
    root = Path(__file__).resolve().parents[1]
    recipe = tmp_path / "esn.yaml"
    recipe.write_text((root / "recipes" / "reservoir" / "mackey-glass.yaml").read_text().replace("ridge: 1.0e-5",
                                                                                               "ridge: 1e-5"))
    assert "ridge: 1e-5" in recipe.read_text()
    ridge = lightning.parse_recipe(["-c", str(recipe)]).model.init_args.ridge
    assert isinstance(ridge, float) and ridge == 1e-5
