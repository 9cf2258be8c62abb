"""SequenceTaggingTask through Lightning and the `recurrentkit` command: metrics, checkpoints, predict files."""

from pathlib import Path

import lightning as L
import pytest
import torch

from recurrentkit import cli
from recurrentkit.data.tagging import TaggingDataModule, read_conllu
from recurrentkit.tasks.tagging import SequenceTaggingTask

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "tagging"
FAKE_DATA = ROOT / "tests" / "fixtures" / "fake_data"
RECIPE = ROOT / "recipes" / "ud-ewt" / "bilstm-upos.yaml"
SMALL = ["--model.init_args.hidden_size=16", "--model.init_args.embedding_size=16",
         "--model.init_args.char_hidden_size=8", "--trainer.enable_progress_bar=false"]


def _trainer(tmp_path, **kw):
    return L.Trainer(max_epochs=kw.pop("max_epochs", 1), logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kw)


def test_entity_metrics_are_logged_for_bio_tags(tmp_path):
    data = TaggingDataModule(train_file=str(FIXTURES / "ner.conll"), val_file=str(FIXTURES / "ner.conll"),
                             batch_size=2)
    task = SequenceTaggingTask(data.vocab_size, data.num_classes, data.char_vocab_size, data.label_names,
                               embedding_size=8, hidden_size=8, char_hidden_size=4, crf=True)
    assert task.scheme == "BIO" and task.monitor == "val/f1"
    metrics = _trainer(tmp_path).validate(task, datamodule=data, verbose=False)[0]
    assert {"val/loss", "val/acc", "val/precision", "val/recall", "val/f1"} <= set(metrics)
    assert 0.0 <= metrics["val/f1"] <= 1.0


def test_pos_tags_log_accuracy_only_and_training_lowers_the_loss(tmp_path):
    data = TaggingDataModule(preset="ud-ewt", data_dir=str(FAKE_DATA), batch_size=3)
    task = SequenceTaggingTask(data.vocab_size, data.num_classes, data.char_vocab_size, data.label_names,
                               embedding_size=16, hidden_size=16, char_hidden_size=8,
                               optimizer=lambda p: torch.optim.Adam(p, lr=0.05))
    assert task.scheme is None and task.monitor == "val/acc"
    trainer = _trainer(tmp_path, max_epochs=15)
    before = trainer.validate(task, datamodule=data, verbose=False)[0]
    trainer.fit(task, datamodule=data)
    after = trainer.validate(task, datamodule=data, verbose=False)[0]
    assert "val/f1" not in after
    assert after["val/loss"] < before["val/loss"] and after["val/acc"] > before["val/acc"]
    assert task.tag([["The", "cat", "sleeps", "."]])[0] == ["DET", "NOUN", "VERB", "PUNCT"]


def test_label_names_must_match_num_classes():
    with pytest.raises(ValueError, match="2 label_names for num_classes=3"):
        SequenceTaggingTask(10, 3, label_names=["A", "B"])


def test_fit_then_predict_writes_conllu(tmp_path, monkeypatch):
    """`recurrentkit fit` then `recurrentkit predict --ckpt_path ... --data.init_args.predict_file x.conllu`."""
    monkeypatch.setenv("RK_DATA_DIR", str(FAKE_DATA))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", "-c", str(RECIPE), *SMALL, "--trainer.max_epochs=2", "--trainer.max_time=null"]) == 0
    checkpoint = tmp_path / "runs" / "ud-ewt" / "bilstm-upos" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert saved["recurrentkit"]["label_names"] == saved["hyper_parameters"]["label_names"]
    source = tmp_path / "input.conllu"
    source.write_text((FIXTURES / "edge.conllu").read_text())
    out = tmp_path / "tagged.conllu"
    assert cli.main(["predict", "-c", str(RECIPE), *SMALL, f"--ckpt_path={checkpoint}",
                     f"--data.init_args.predict_file={source}", f"--predictions_file={out}"]) == 0
    tagged, original = read_conllu(out), read_conllu(source)
    assert tagged.tokens == original.tokens and tagged.lines == original.lines
    labels = set(saved["recurrentkit"]["label_names"])
    assert all(tag in labels for sentence in tagged.tags for tag in sentence)
    kept = [line for line in out.read_text().splitlines() if not line[:1].isdigit() or "-" in line.split("\t")[0]]
    assert kept == [line for line in source.read_text().splitlines()
                    if not line[:1].isdigit() or "-" in line.split("\t")[0]]  # comments, 2-3 line untouched
