"""Two-process DDP on CPU (gloo, Lightning ``ddp_spawn``): the language-model path trains a few steps and shows

* each rank reads its own disjoint, contiguous shard of the token stream;
* gradients are synchronised: the parameters are identical on both ranks after the steps (their data differ);
* validation perplexity under DDP equals the single-process value on the same data: with ``eval_batch_size = b``
  per rank on 2 ranks, the ranks' rows are exactly the rows of one process with ``eval_batch_size = 2b`` (see
  :func:`~recurrentkit.data.lm.batchify`), and the task's token-weighted ``MeanMetric`` is summed over ranks by
  torchmetrics before ``exp``.
"""

import random
from pathlib import Path

import lightning as L
import pytest
import torch

from recurrentkit.data.lm import LanguageModelingDataModule, batchify
from recurrentkit.tasks.language_model import LanguageModelTask

WORLD, B, EVAL_B, T, STEPS = 2, 2, 2, 5, 3


class PreparedData(LanguageModelingDataModule):
    """The data module with its corpus already tokenized in the parent process (it travels to the spawned ranks
    with the pickled module), so the ranks skip ``datasets``; ``setup`` still shards by the trainer's rank."""

    def prepare_data(self) -> None:
        pass


class Record(L.Callback):
    """Each rank writes the batches it trained on, its final parameters and its validation perplexity."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batches.append((batch[0].clone(), batch[1].clone()))

    def on_fit_end(self, trainer, pl_module) -> None:
        params = torch.cat([p.detach().flatten() for p in pl_module.parameters()])
        torch.save({"rank": trainer.global_rank, "world": trainer.world_size, "batches": self.batches,
                    "params": params, "val_ppl": float(trainer.callback_metrics["val/ppl"])},
                   Path(self.out_dir) / f"rank{trainer.global_rank}.pt")


def _corpus(path: Path) -> None:
    rng = random.Random(0)
    words = [f"w{i}" for i in range(30)]
    lines = [" ".join(rng.choices(words, weights=range(30, 0, -1), k=rng.randint(4, 12))) for _ in range(90)]
    (path / "train.txt").write_text("\n".join(lines[:60]) + "\n")
    (path / "valid.txt").write_text("\n".join(lines[60:]) + "\n")


def _data(tmp_path: Path, eval_batch_size: int) -> PreparedData:
    dm = PreparedData(data_files={"train": str(tmp_path / "train.txt"), "validation": str(tmp_path / "valid.txt")},
                      tokenizer="word", batch_size=B, eval_batch_size=eval_batch_size, bptt=T,
                      cache_dir=str(tmp_path / "hf"))
    dm.vocab_size  # noqa: B018 - tokenize and build the vocab here, once
    return dm


def _task(vocab_size: int) -> LanguageModelTask:
    torch.manual_seed(0)
    return LanguageModelTask(vocab_size, embedding_size=8, hidden_size=8, num_layers=1)


def _trainer(**kw) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, use_distributed_sampler=False, num_sanity_val_steps=0, **kw)


@pytest.mark.timeout(180)
def test_ddp_two_cpu_processes(tmp_path):
    _corpus(tmp_path)
    dm = _data(tmp_path, eval_batch_size=EVAL_B)
    task = _task(dm.vocab_size)
    trainer = _trainer(devices=WORLD, strategy="ddp_spawn", max_epochs=1, limit_train_batches=STEPS,
                       callbacks=[Record(str(tmp_path))])
    trainer.fit(task, datamodule=dm)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == WORLD for r in ranks)

    # each rank read its own contiguous shard, in order, and the two shards are disjoint
    stream = dm.token_stream("train")
    per_row = stream.numel() // (WORLD * B)
    for r, rec in enumerate(ranks):
        rows = batchify(stream, B, r, WORLD)
        assert torch.equal(rows, stream[r * B * per_row:(r + 1) * B * per_row].view(B, per_row))
        assert len(rec["batches"]) == STEPS
        for k, (x, y) in enumerate(rec["batches"]):
            assert torch.equal(x, rows[:, k * T:(k + 1) * T]) and torch.equal(y, rows[:, k * T + 1:(k + 1) * T + 1])
    x0 = torch.stack([x for x, _ in ranks[0]["batches"]])
    x1 = torch.stack([x for x, _ in ranks[1]["batches"]])
    assert not torch.equal(x0, x1)  # different data on the two ranks ...

    # ... yet identical parameters after the steps: the gradients were all-reduced
    initial = torch.cat([p.detach().flatten() for p in _task(dm.vocab_size).parameters()])
    assert not torch.allclose(ranks[0]["params"], initial)  # training did move them
    torch.testing.assert_close(ranks[0]["params"], ranks[1]["params"], rtol=0, atol=0)

    # validation perplexity of the DDP run == one process over the same rows (eval batch WORLD * EVAL_B)
    ddp_ppl = ranks[0]["val_ppl"]
    assert ranks[1]["val_ppl"] == pytest.approx(ddp_ppl, rel=1e-6)
    single = _task(dm.vocab_size)
    torch.nn.utils.vector_to_parameters(ranks[0]["params"], single.parameters())
    single_dm = _data(tmp_path, eval_batch_size=WORLD * EVAL_B)
    out = _trainer(devices=1).validate(single, datamodule=single_dm, verbose=False)
    assert out[0]["val/ppl"] == pytest.approx(ddp_ppl, rel=1e-5)
    # the rows really are the same: rank r's validation rows are rows [r*b, (r+1)*b) of the single process
    val = single_dm.token_stream("validation")
    one = batchify(val, WORLD * EVAL_B)
    assert torch.equal(torch.cat([batchify(val, EVAL_B, r, WORLD) for r in range(WORLD)]), one)
