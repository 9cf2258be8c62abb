"""The one presets registry and the one data-directory rule, shared by the LM and classification data modules."""

from pathlib import Path

import pytest

from recurrentkit.data.classification import ClassificationDataModule
from recurrentkit.data.lm import LanguageModelingDataModule
from recurrentkit.data.presets import (
    KINDS,
    PRESETS,
    Preset,
    default_data_dir,
    get_preset,
    list_presets,
    resolve_data_dir,
    resolve_preset,
)

FAKE_DATA = Path(__file__).parent / "fixtures" / "fake_data"


def test_one_registry_with_a_kind_per_preset():
    assert all(isinstance(p, Preset) and p.kind in KINDS and p.name == name for name, p in PRESETS.items())
    assert set(list_presets("lm")) | set(list_presets("classification")) | set(list_presets("tagging")) == set(PRESETS)
    assert {"ptb", "tinyshakespeare-bundled"} <= set(list_presets("lm"))
    assert {"sst2", "sst2-sentence"} <= set(list_presets("classification"))
    assert list_presets("tagging") == ["ud-ewt"]
    with pytest.raises(ValueError, match="kind must be one of"):
        Preset("x", "speech", {"train": "x.txt"})


def test_each_data_module_rejects_the_other_kind_by_name():
    with pytest.raises(ValueError, match=r"'sst2' is a classification data set.*LanguageModelingDataModule takes"):
        LanguageModelingDataModule(preset="sst2")
    with pytest.raises(ValueError, match=r"'ptb' is a language-modelling data set.*ClassificationDataModule takes"):
        ClassificationDataModule(preset="ptb")
    with pytest.raises(ValueError, match=r"unknown preset 'sst3'; choose one of \['sst2', 'sst2-sentence'\]"):
        get_preset("sst3", kind="classification")


def test_data_dir_resolution_order(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("RK_DATA_DIR", raising=False)
    assert default_data_dir() is None and resolve_data_dir() is None  # 3. ../shared/data only when it exists
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    assert resolve_data_dir() == shared
    monkeypatch.setenv("RK_DATA_DIR", str(FAKE_DATA))  # 2. the environment variable beats ../shared/data
    assert resolve_data_dir() == FAKE_DATA
    assert resolve_data_dir(str(tmp_path)) == tmp_path  # 1. the argument beats both


def test_both_kinds_find_their_files_through_the_same_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RK_DATA_DIR", str(FAKE_DATA))
    _, lm_files = resolve_preset("ptb", kind="lm")
    _, cls_files = resolve_preset("sst2", kind="classification")
    assert lm_files["train"] == str(FAKE_DATA / "ptb" / "ptb.train.txt")
    assert cls_files == {"train": str(FAKE_DATA / "sst2/glue/train.tsv"),
                         "validation": str(FAKE_DATA / "sst2/glue/dev.tsv")}
    dm = ClassificationDataModule(preset="sst2")
    assert dm.data_dir == FAKE_DATA and dm.raw_split("train").origin == cls_files["train"]
    assert dm.label_names == ["negative", "positive"] and dm.format == "tsv"  # the preset's options
    monkeypatch.setenv("RK_DATA_DIR", str(tmp_path))  # nothing there
    assert resolve_preset("sst2")[1] is None
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "sst2/glue/train.tsv")):
        ClassificationDataModule(preset="sst2").vocab_size  # noqa: B018
