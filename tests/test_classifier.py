"""RecurrentClassifier and ClassificationTask: padding invariance, training, raw-string prediction, checkpoints,
the frozen echo-state reservoir, pretrained vectors, the confusion-matrix image and the SST-2 recipes."""

import csv
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger

from recurrentkit.callbacks import TSVPredictionWriter, log_confusion_matrix, write_predictions
from recurrentkit.cli import build_cli
from recurrentkit.data.classification import ClassificationDataModule
from recurrentkit.models.classifier import RecurrentClassifier
from recurrentkit.nn.embedding import load_word_vectors
from recurrentkit.nn.pooling import POOLING_MODES
from recurrentkit.tasks.classification import ClassificationTask

FIXTURES = Path(__file__).parent / "fixtures" / "cls"
RECIPES = sorted((Path(__file__).parents[1] / "recipes" / "sst2").glob("*.yaml"))
CELLS = {"lstm": {}, "gru": {}, "leaky": {}, "esn": {"density": 0.5}}



def _trainer(tmp_path, **kw):
    defaults = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                "enable_model_summary": False, "default_root_dir": str(tmp_path)}
    return L.Trainer(**{**defaults, **kw})


@pytest.mark.parametrize("pooling", POOLING_MODES)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_padded_batch_gives_each_sample_its_own_logits(cell, pooling):
    model = RecurrentClassifier(30, 3, cell=cell, embedding_size=8, hidden_size=6, num_layers=2, bidirectional=True,
                                pooling=pooling, head_hidden_size=5, cell_kwargs=CELLS[cell]).eval()
    lengths = torch.tensor([5, 2, 7, 1])
    tokens = torch.randint(2, 30, (4, 7))
    tokens[torch.arange(7).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    batched = model(tokens, lengths)
    alone = torch.cat([model(tokens[i:i + 1, :n], torch.tensor([n])) for i, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-4)
    # the ids at padded positions don't matter either
    noisy = torch.where(tokens == 0, torch.randint(2, 30, tokens.shape), tokens)
    torch.testing.assert_close(model(noisy, lengths), batched, atol=1e-5, rtol=1e-4)


def test_esn_trains_only_embedding_and_head(tmp_path):
    dm = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), batch_size=8)
    task = ClassificationTask(dm.vocab_size, dm.num_classes, cell="esn", embedding_size=8, hidden_size=40,
                              bidirectional=True, pooling="mean", head_hidden_size=8,
                              cell_kwargs={"spectral_radius": 0.9, "density": 0.2})
    trainable = {n for n, p in task.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("model.embedding", "model.head")) for n in trainable)
    before = {k: v.clone() for k, v in task.state_dict().items()}
    _trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(task, datamodule=dm)
    after = task.state_dict()
    reservoir = [k for k in before if ".recurrent." in k]
    assert reservoir and all(torch.equal(before[k], after[k]) for k in reservoir)
    assert not torch.equal(before["model.embedding.weight"], after["model.embedding.weight"])
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.head"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A BiLSTM trained on the tiny GLUE-style fixture, saved to a checkpoint."""
    root = tmp_path_factory.mktemp("cls")
    torch.manual_seed(0)
    dm = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), batch_size=8,
                                  predict_file=str(FIXTURES / "predict.txt"))
    task = ClassificationTask(dm.vocab_size, dm.num_classes, cell="lstm", embedding_size=16, hidden_size=16,
                              bidirectional=True, pooling="max",
                              optimizer=lambda p: torch.optim.Adam(p, lr=0.02))
    trainer = _trainer(root, max_epochs=25, logger=CSVLogger(str(root)), num_sanity_val_steps=0)
    trainer.fit(task, datamodule=dm)
    ckpt = root / "tiny.ckpt"
    trainer.save_checkpoint(ckpt)
    return dm, task, trainer, ckpt


def test_training_on_tiny_fixture_is_near_perfect(trained, tmp_path):
    dm, task, trainer, _ = trained
    assert trainer.callback_metrics["val/acc"] >= 0.9
    dm_train_as_val = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES),
                                               val_file="sst2/glue/train.tsv", train_file="sst2/glue/train.tsv")
    result = _trainer(tmp_path).validate(task, datamodule=dm_train_as_val, verbose=False)[0]
    assert result["val/acc"] >= 0.95 and result["val/f1"] >= 0.95


def test_confusion_matrix_png_without_an_image_logger(trained):
    _, _, trainer, _ = trained
    pngs = sorted(Path(trainer.log_dir, "confusion_matrix").glob("epoch=*.png"))
    assert len(pngs) == trainer.max_epochs and pngs[0].read_bytes()[:4] == b"\x89PNG"


def test_confusion_matrix_goes_to_an_image_logger(trained, tmp_path):
    _, task, _, _ = trained

    class ImageLogger(CSVLogger):
        images = []

        def log_image(self, key, images, step=None, **kwargs):
            self.images.append((key, images))

    logger = ImageLogger(str(tmp_path))
    assert log_confusion_matrix(torch.tensor([[3, 1], [0, 4]]), task.label_names, logger, 0, 0, tmp_path) is None
    assert not list(tmp_path.glob("*.png"))
    (key, images), = logger.images
    assert key == "val/confusion_matrix" and images[0].ndim == 3 and images[0].shape[2] == 3


def test_checkpoint_predicts_raw_strings(trained):
    _, task, _, ckpt = trained
    loaded = ClassificationTask.load_from_checkpoint(ckpt)
    assert loaded.label_names == ["negative", "positive"]
    texts = ["a great and lovely film", "the plot was awful and dull", "superb", "boring movie"]
    out = loaded.predict_texts(texts)
    assert [o["label"] for o in out] == ["positive", "negative", "positive", "negative"]
    assert all(abs(sum(o["probs"].values()) - 1) < 1e-5 for o in out)
    assert [o["label"] for o in task.predict_texts(texts)] == [o["label"] for o in out]
    with pytest.raises(ValueError, match="text 1 is empty"):
        loaded.predict_texts(["good", "  "])
    with pytest.raises(RuntimeError, match="no tokenizer"):
        ClassificationTask(10, 2).predict_texts(["good"])


def test_predict_file_to_tsv(trained, tmp_path):
    _, _, _, ckpt = trained
    dm = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), predict_file=str(FIXTURES / "predict.txt"))
    task = ClassificationTask.load_from_checkpoint(ckpt)
    out = tmp_path / "predictions.tsv"
    trainer = _trainer(tmp_path, callbacks=[TSVPredictionWriter(str(out))])
    predictions = trainer.predict(task, datamodule=dm)
    assert set(predictions[0]) == {"label", "probs", "index"}
    rows = list(csv.DictReader(out.open(), delimiter="\t"))
    texts = (FIXTURES / "predict.txt").read_text().splitlines()
    assert [r["text"] for r in rows] == texts
    assert [r["label"] for r in rows] == ["positive", "negative", "negative", "positive"]
    assert all(abs(float(r["p_negative"]) + float(r["p_positive"]) - 1) < 1e-3 for r in rows)
    path = write_predictions(predictions, tmp_path / "plain.tsv", task.label_names)
    assert Path(path).read_text().splitlines()[0] == "index\tlabel\tconfidence\tp_negative\tp_positive"
    with pytest.raises(ValueError, match="3 label names"):
        write_predictions(predictions, tmp_path / "x.tsv", ["a", "b", "c"])


@pytest.mark.parametrize("name", ["vectors.glove.txt", "vectors.w2v.txt"])
def test_pretrained_vectors_initialise_embedding_and_report_oov(name, tmp_path):
    path = FIXTURES / name
    table = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in path.read_text().splitlines()
             if len(line.split()) == 5}
    dm = ClassificationDataModule(preset="sst2", data_dir=str(FIXTURES), batch_size=8)
    task = ClassificationTask(dm.vocab_size, 2, embedding_size=4, hidden_size=4, pretrained_embeddings=str(path),
                              freeze_embedding=True)
    _trainer(tmp_path, max_epochs=1, limit_train_batches=1, limit_val_batches=0).fit(task, datamodule=dm)
    report, words = task.pretrained_report, dm.vocab.tokens
    weight = task.model.embedding.weight
    found = [w for w in words[2:] if w in table]
    assert report.found == len(found) > 0 and sorted(report.oov) == sorted(set(words[2:]) - set(table))
    for word in found:
        assert torch.allclose(weight[words.index(word)], torch.tensor(table[word]))
    assert not weight.requires_grad
    with pytest.raises(ValueError, match="4-d vectors but embedding_size is 8"):
        RecurrentClassifier(len(words), 2, embedding_size=8).load_pretrained_embeddings(path, words)
    vectors, hit, _ = load_word_vectors(path, ["GOOD", "good"], lower=True)
    assert hit.all() and torch.equal(vectors[0], vectors[1])


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_instantiates_and_runs(recipe, tmp_path):
    header = "\n".join(line for line in recipe.read_text().splitlines() if line.startswith("#"))
    assert recipe.read_text().startswith("#") and f"recurrentkit fit -c recipes/sst2/{recipe.name}" in header
    assert "Should reach" in header
    config = yaml.safe_load(recipe.read_text())
    cli = build_cli(["-c", str(recipe), f"--data.init_args.data_dir={FIXTURES}", "--trainer.fast_dev_run=true",
                     f"--trainer.default_root_dir={tmp_path}", "--trainer.logger=false",
                     "--trainer.enable_progress_bar=false"], run=False)
    data, task = cli.datamodule, cli.model
    assert isinstance(data, ClassificationDataModule) and isinstance(task, ClassificationTask)
    assert task.hparams.vocab_size == data.vocab_size and task.hparams.num_classes == data.num_classes
    assert task.hparams.cell == config["model"]["init_args"]["cell"]
    optimizer = task.configure_optimizers()
    assert optimizer.defaults["lr"] == config["model"]["init_args"]["optimizer"]["init_args"]["lr"]
    cli.trainer.fit(task, datamodule=data)
    assert "train/loss" in cli.trainer.callback_metrics


def test_embedding_init_std_and_bad_sizes():
    model = RecurrentClassifier(500, 2, embedding_size=64, embedding_init_std=0.1)
    weight = model.embedding.weight
    assert (weight[0] == 0).all() and 0.09 < weight[1:].std().item() < 0.11
    assert 0.9 < RecurrentClassifier(500, 2, embedding_size=64).embedding.weight[1:].std().item() < 1.1
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        RecurrentClassifier(10, 1)
    with pytest.raises(ValueError, match="tokens must be"):
        RecurrentClassifier(10, 2)(torch.zeros(3, dtype=torch.long))
