"""The conventions every task shares (recurrentkit/tasks/base.py) and the command-line layering."""

import ast
import importlib
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.cli import ReduceLROnPlateau

from recurrentkit import tasks
from recurrentkit.tasks.base import CHECKPOINT_KEY, Task

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recurrentkit"


class Tiny(Task):
    monitor = "val/tiny"

    def __init__(self, optimizer=torch.optim.SGD, lr_scheduler=None, freeze: bool = False) -> None:
        super().__init__(optimizer, lr_scheduler)
        self.layer = torch.nn.Linear(2, 1)
        self.fixed = torch.nn.Linear(2, 1)
        self.fixed.requires_grad_(False)
        if freeze:
            self.layer.requires_grad_(False)
        self.note = "hello"

    def checkpoint_extras(self):
        return {**super().checkpoint_extras(), "note": self.note}

    def load_checkpoint_extras(self, extras):
        self.note = extras.get("note", "missing")


@pytest.mark.parametrize("name", sorted(n for n in tasks.__all__ if n != "Task"))
def test_every_task_follows_the_base(name):
    assert issubclass(getattr(tasks, name), Task)


def test_optimizer_sees_only_trainable_parameters_and_scheduler_monitors():
    task = Tiny(optimizer=lambda p: torch.optim.SGD(p, lr=0.5))
    optimizer = task.configure_optimizers()
    assert [p for group in optimizer.param_groups for p in group["params"]] == list(task.layer.parameters())
    config = Tiny(lr_scheduler=lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o)).configure_optimizers()
    assert config["lr_scheduler"]["monitor"] == "val/tiny" and config["lr_scheduler"]["interval"] == "epoch"
    own = Tiny(lr_scheduler=lambda o: ReduceLROnPlateau(o, monitor="val/loss")).configure_optimizers()
    assert own["lr_scheduler"]["monitor"] == "val/loss"
    assert Tiny(optimizer=None).configure_optimizers() is None
    with pytest.raises(ValueError, match="every parameter is frozen"):
        Tiny(freeze=True).configure_optimizers()


def test_checkpoint_extras_live_under_one_key():
    task = Tiny()
    checkpoint = {}
    task.on_save_checkpoint(checkpoint)
    assert checkpoint == {CHECKPOINT_KEY: {"note": "hello"}}
    other = Tiny()
    other.note = "changed"
    other.on_load_checkpoint(checkpoint)
    assert other.note == "hello"
    other.on_load_checkpoint({})  # an older checkpoint without extras
    assert other.note == "missing"


def test_word2vec_checkpoint_carries_its_vocabulary(tmp_path):
    from recurrentkit.data.skipgram import Word2VecDataModule
    from recurrentkit.tasks.word2vec import Word2VecTask

    sentences = [["a", "b", "c", "a", "b"], ["c", "a", "d", "b"]] * 20
    data = Word2VecDataModule(sentences=sentences, min_count=1, batch_size=16)
    task = Word2VecTask(data.vocab_size, vector_size=4)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(task, datamodule=data)
    path = tmp_path / "w2v.ckpt"
    trainer.save_checkpoint(path)
    loaded = Word2VecTask.load_from_checkpoint(path, weights_only=True)
    assert loaded.word_vectors().words == data.words  # no data module, no words= argument
    assert torch.equal(loaded.word_vectors().vectors, task.word_vectors().vectors)


def test_classification_reads_the_older_checkpoint_key(tmp_path):
    from recurrentkit.data.classification import ClassificationDataModule
    from recurrentkit.tasks.classification import LEGACY_CHECKPOINT_KEY, ClassificationTask

    data = ClassificationDataModule(preset="sst2", data_dir=str(ROOT / "tests" / "fixtures" / "cls"))
    task = ClassificationTask(data.vocab_size, data.num_classes, hidden_size=4, embedding_size=4)
    task.on_load_checkpoint({LEGACY_CHECKPOINT_KEY: data.preprocessing_state()})
    assert task.label_names == ["negative", "positive"]


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    package = package.removesuffix(".__init__")
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_command_line_layer_is_only_in_recurrentkit_cli():
    """Nothing in the library imports the CLI layer (so it cannot import back), and no module outside it parses
    command lines."""
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "cli" or path.name == "__main__.py":
            continue
        imported = _imports(path)
        assert not any(n == "recurrentkit.cli" or n.startswith("recurrentkit.cli.") for n in imported), path
        assert "argparse" not in imported, f"{path} parses a command line: that belongs in recurrentkit/cli/"
        assert "__main__" not in path.read_text(), f"{path} is a second runner"
    assert "recurrentkit.cli.table" not in _imports(PACKAGE / "cli" / "lightning.py")
