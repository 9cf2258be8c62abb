"""Tokens/s of LanguageModelTask + Lightning Trainer vs a minimal hand-written PyTorch loop, same model, same run.

Zaremba-small sized: 2x200 LSTM, vocab 10000, batch 20, BPTT 20, SGD lr 1, gradient clipping at norm 5, hidden state
carried and detached between batches, synthetic tokens. Both loops are timed on the same steps after a warm-up,
alternating, ``--repeats`` times; the ratio of the medians is printed (goal >= 0.95x).

    python benchmarks/lm_step.py                   # defaults: 200 timed steps, 3 repeats, 1 thread
    python benchmarks/lm_step.py --threads 2 --steps 300
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from torch import nn

VOCAB, EMB, HIDDEN, LAYERS, BATCH, BPTT = 10_000, 200, 200, 2, 20, 20


def synthetic_batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, VOCAB, (BATCH, n * BPTT + 1), generator=g)
    return [(stream[:, i * BPTT:(i + 1) * BPTT].contiguous(), stream[:, i * BPTT + 1:(i + 1) * BPTT + 1].contiguous())
            for i in range(n)]


class PlainLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, EMB)
        self.lstm = nn.LSTM(EMB, HIDDEN, LAYERS, batch_first=True)
        self.decoder = nn.Linear(HIDDEN, VOCAB)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embedding(x), state)
        return self.decoder(out), state


def time_plain(batches, warmup: int) -> float:
    """Seconds for the timed steps of the hand-written loop."""
    torch.manual_seed(0)
    model = PlainLM()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss_fn = nn.CrossEntropyLoss()
    state = None
    start = None
    for i, (x, y) in enumerate(batches):
        if i == warmup:
            start = time.perf_counter()
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)
        loss = loss_fn(logits.view(-1, VOCAB), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
    return time.perf_counter() - start


class _Batches:
    """A plain iterable over prepared batches (a list would be read as several dataloaders)."""

    def __init__(self, batches) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def time_lightning(batches, warmup: int) -> float:
    """Seconds for the same timed steps through LanguageModelTask + Trainer."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from recurrentkit.tasks import LanguageModelTask

    class Timer(Callback):
        start = end = None

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.end = time.perf_counter()

    torch.manual_seed(0)
    task = LanguageModelTask(VOCAB, cell="lstm", embedding_size=EMB, hidden_size=HIDDEN, num_layers=LAYERS)
    timer = Timer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, gradient_clip_val=5.0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        limit_val_batches=0, callbacks=[timer])
    trainer.fit(task, _Batches(batches))
    return timer.end - timer.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for both loops")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    batches = synthetic_batches(args.warmup + args.steps)
    tokens = args.steps * BATCH * BPTT
    plain, ours = [], []
    for r in range(args.repeats):
        plain.append(tokens / time_plain(batches, args.warmup))
        ours.append(tokens / time_lightning(batches, args.warmup))
        print(f"repeat {r}: plain {plain[-1]:,.0f} tok/s   LanguageModelTask+Trainer {ours[-1]:,.0f} tok/s", flush=True)
    p, o = statistics.median(plain), statistics.median(ours)
    print(f"median over {args.repeats} repeats ({args.steps} steps of {BATCH}x{BPTT} tokens, {args.threads} thread(s), "
          f"torch {torch.__version__}):")
    print(f"  hand-written PyTorch loop : {p:,.0f} tokens/s")
    print(f"  LanguageModelTask+Trainer : {o:,.0f} tokens/s")
    print(f"  ratio                     : {o / p:.3f}x (goal >= 0.95x)")


if __name__ == "__main__":
    main()
