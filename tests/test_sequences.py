"""SequenceDataModule: the one base of the classification, tagging and translation data (sources, bucketed loaders)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from recurrentkit.data.classification import ClassificationDataModule
from recurrentkit.data.sequences import SequenceDataModule
from recurrentkit.data.tagging import TaggingDataModule
from recurrentkit.data.translation import TranslationDataModule

FIXTURES = Path(__file__).parent / "fixtures"
SST = FIXTURES / "cls" / "sst2" / "glue"
EDGE = FIXTURES / "tagging" / "edge.conllu"
MULTI30K = FIXTURES / "fake_data" / "multi30k"


def _translation(**kw):
    return TranslationDataModule("de", "en", data_dir=str(MULTI30K), vocab_size=300, batch_size=4, **kw)


def test_every_sequence_data_module_is_one():
    assert all(issubclass(c, SequenceDataModule)
               for c in (ClassificationDataModule, TaggingDataModule, TranslationDataModule))


def test_missing_splits_name_the_argument_to_set():
    dm = TaggingDataModule(train_file=str(EDGE), batch_size=2)
    with pytest.raises(ValueError, match="no test split is configured: set test_file"):
        dm.test_dataloader()
    with pytest.raises(ValueError, match="set predict_file to predict"):
        dm.predict_dataloader()
    with pytest.raises(ValueError, match="no test split is configured: set test_prefix"):
        _translation().test_dataloader()


def test_relative_paths_resolve_under_data_dir_or_are_named_when_absent(tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "edge.conllu").write_text(EDGE.read_text())
    assert TaggingDataModule(train_file="edge.conllu", data_dir=str(moved)).raw_split("train").origin == \
        str(moved / "edge.conllu")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("RK_DATA_DIR", raising=False)  # and no ../shared/data here: no data directory at all
    with pytest.raises(FileNotFoundError, match="train file not found: edge.conllu"):
        TaggingDataModule(train_file="edge.conllu").raw_split("train")
    with pytest.raises(FileNotFoundError, match="train"):
        TranslationDataModule("de", "en", train_prefix="train").raw_split("train")


def test_evaluation_is_sharded_by_rank():
    """Every rank evaluates its own share (translation too: Seq2SeqTask gathers the hypotheses before corpus BLEU)."""
    served = {}
    for name, make in [("cls", lambda: ClassificationDataModule(train_file=str(SST / "train.tsv"),
                                                                val_file=str(SST / "dev.tsv"), batch_size=4)),
                       ("mt", lambda: _translation(train_prefix="train", val_prefix="val"))]:
        sizes = []
        for rank in (0, 1):
            dm = make()
            dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)  # what a DDP Trainer exposes
            dm.setup("fit")
            sizes.append(sum(len(batch["index"]) for batch in dm.val_dataloader()))
        served[name] = (sizes, len(dm.encoded("val")))
    (cls_sizes, cls_total), (mt_sizes, mt_total) = served["cls"], served["mt"]
    assert sum(cls_sizes) == cls_total and all(0 < s < cls_total for s in cls_sizes)
    assert sum(mt_sizes) == mt_total and all(0 < s < mt_total for s in mt_sizes)
