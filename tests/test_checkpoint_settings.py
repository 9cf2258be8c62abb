"""``--ckpt_path`` with settings that differ from the checkpoint's, unreadable checkpoints, and settings checked
before any data is loaded: each gives one clear message naming the file or setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from recurrentkit import cli
from recurrentkit.checkpointing import CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["-c", str(ROOT / "recipes" / "debug" / "tiny-lm.yaml"), "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false"]
TEST = ["test", *TINY, "--trainer.fast_dev_run=false", "--trainer.limit_test_batches=2"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A 2-step tiny-lm checkpoint (LSTM, hidden_size 32)."""
    root = tmp_path_factory.mktemp("ckpt")
    assert cli.main(["fit", *TINY, "--trainer.fast_dev_run=false", "--trainer.max_steps=2",
                     "--trainer.limit_val_batches=0", "--trainer.enable_checkpointing=true",
                     f"--trainer.default_root_dir={root}"]) == 0
    return str(next(root.rglob("*.ckpt")))


def test_a_shape_changing_setting_is_an_error_naming_it(checkpoint, capsys):
    assert cli.main([*TEST, "--ckpt_path", checkpoint, "--model.init_args.hidden_size=64"]) == 1
    err = capsys.readouterr().err
    assert "hidden_size: 32 in the checkpoint, 64 configured" in err
    assert "change the shapes" in err and "weight_hh: [128, 32] in the checkpoint, [256, 64] configured" in err


def test_a_setting_that_keeps_shapes_is_reported_and_the_policy_says_who_wins(checkpoint, capsys):
    assert cli.main([*TEST, "--ckpt_path", checkpoint, "--model.init_args.dropout=0.5"]) == 0
    err = capsys.readouterr().err
    assert "dropout: 0.0 in the checkpoint, 0.5 configured" in err and "the checkpoint's values are used" in err
    assert cli.main([*TEST, "--ckpt_path", checkpoint, "--model.init_args.dropout=0.5",
                     "--ckpt_settings=config"]) == 0
    assert "the configured values are used" in capsys.readouterr().err


def test_the_same_settings_say_nothing(checkpoint, capsys):
    assert cli.main([*TEST, "--ckpt_path", checkpoint]) == 0
    assert "differs from the checkpoint" not in capsys.readouterr().err


def test_shape_changes_can_be_overridden_by_the_checkpoint(checkpoint, capsys):
    assert cli.main([*TEST, "--ckpt_path", checkpoint, "--model.init_args.hidden_size=64",
                     "--ckpt_settings=checkpoint"]) == 0
    assert "the checkpoint's values are used" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [(b"", "is empty (0 bytes)"),
                                              (bytes(range(256)) * 20, "is not a readable PyTorch checkpoint")])
def test_unreadable_checkpoints_name_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=re.escape(message)):
        load_checkpoint(path)
    assert cli.main([*TEST, "--ckpt_path", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and message in err and "weights_only=False" not in err


def test_an_unknown_cell_is_reported_before_the_data_is_loaded(capsys, monkeypatch):
    from recurrentkit.data.lm import LanguageModelingDataModule

    def refuse(*args, **kwargs):
        raise AssertionError("the data module was built before the cell name was checked")

    monkeypatch.setattr(LanguageModelingDataModule, "__init__", refuse)
    assert cli.main(["fit", *TINY, "--model.init_args.cell=lstmm"]) == 1
    err = capsys.readouterr().err
    assert "model.init_args.cell: unknown cell 'lstmm'; did you mean 'lstm'" in err


@pytest.mark.parametrize("flags, message", [(["--temperature", "inf"], "--temperature must be a finite number"),
                                            (["--temperature", "nan"], "--temperature must be a finite number"),
                                            (["--prompt", "ROMEO\u00e9\u2603"], "tokens the vocabulary does not know")])
def test_generate_rejects_bad_temperature_and_unknown_prompt_characters(checkpoint, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["generate", "--ckpt_path", checkpoint, "--max_new_tokens", "5", *flags])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "prompt" in flags:
        assert "\u2603" in err  # the unknown character is named


def test_char_level_true_survives_a_word_tokenizer(tmp_path, capsys, monkeypatch):
    """A user's ``char_level: true`` is not overwritten by the data module (a word tokenizer over spaced chars)."""
    corpus = tmp_path / "chars.txt"
    corpus.write_text("a b c d e a b c\n" * 40)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", *TINY, "--trainer.fast_dev_run=true", "--data.init_args.preset=null",
                     f"--data.init_args.data_files={{train: {corpus}, validation: {corpus}}}",
                     "--data.init_args.tokenizer=word", "--model.init_args.char_level=true"]) == 0
    assert "val/bpc" in capsys.readouterr().out
