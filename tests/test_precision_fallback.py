"""A recipe's bf16-mixed falls back to 32-true on a CPU that would only emulate bfloat16."""

import pytest

from recurrentkit.cli import lightning as cli_lightning


@pytest.mark.parametrize("native, accelerator, expected", [
    (False, "cpu", "32-true"),
    (False, "auto", "32-true"),  # no CUDA in the test environment: auto is the CPU
    (True, "cpu", "bf16-mixed"),
    (False, "gpu", "bf16-mixed"),  # not a CPU: left alone
])
def test_bf16_mixed_falls_back_only_on_an_emulating_cpu(monkeypatch, capsys, native, accelerator, expected):
    monkeypatch.setattr(cli_lightning, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    config = {"precision": "bf16-mixed", "accelerator": accelerator}
    cli_lightning.fall_back_from_emulated_bf16(config)
    assert config["precision"] == expected
    assert ("no native bfloat16" in capsys.readouterr().err) == (expected == "32-true")


def test_other_precisions_are_untouched(monkeypatch):
    monkeypatch.setattr(cli_lightning, "cpu_has_native_bf16", lambda: False)
    for precision in ("32-true", "16-mixed", "bf16-true", None):
        config = {"precision": precision, "accelerator": "cpu"}
        cli_lightning.fall_back_from_emulated_bf16(config)
        assert config["precision"] == precision
