"""Selecting the W&B logger without the wandb package gives one sentence, not a 25-frame traceback."""

import importlib.util

import pytest

from recurrentkit.errors import ConfigError
from recurrentkit.loggers import WandbLogger


def test_wandb_logger_without_the_package_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match="needs the wandb package: pip install wandb"):
        WandbLogger()
