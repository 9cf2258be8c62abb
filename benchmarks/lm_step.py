"""Training speed of ``LanguageModelTask`` + Lightning Trainer against a hand-written PyTorch loop, same run.

The configuration is that of pytorch/examples' ``word_language_model`` with its defaults: Penn Treebank (vocab 10k),
embedding 200, 2 x 200 LSTM, dropout 0.2 (embedding output, between layers, before the decoder), BPTT 35, batch 20,
plain SGD lr 20, gradient norm clipped at 0.25, hidden state carried and detached between batches.

* the **loop** is written the way that example is: sequence-first ``[T, B]`` windows sliced from the batchified
  stream, one ``nn.LSTM(num_layers=2, dropout=0.2)``, ``CrossEntropyLoss``, ``clip_grad_norm_`` and an in-place
  ``p -= lr * grad`` update;
* **ours** is what ``recurrentkit fit`` runs: ``LanguageModelTask`` (``RNNLanguageModel``) under a Lightning
  ``Trainer`` (``gradient_clip_val=0.25``), fed by ``LanguageModelingDataModule``'s own train loader.

Both read the same PTB batches (``/work/shared/data/ptb`` through the ``ptb`` preset, or ``--synthetic``). They
alternate ``--repeats`` times, each measurement in a fresh process (so each side has the allocator setting its own
program has: ours calls :func:`recurrentkit.allocator.keep_freed_memory` as the ``recurrentkit`` command does at
start, the loop keeps glibc's defaults as the example does); each times ``--steps`` steps after ``--warmup``.
``--loop-malloc kept`` gives the loop the same allocator setting, for the comparison on equal footing. Printed:
tokens/s of each (median), the ratio ours/loop (goal >= 1.0x), the same ratio per CPU second (steadier on a shared
machine), and the process CPU time split into user and system per epoch-equivalent (PTB: 1328 batches of 20 x 35;
goal: ours' system time within 1.5x of the loop's).

    python benchmarks/lm_step.py                          # 200 timed steps, 3 repeats, torch's default threads
    python benchmarks/lm_step.py --threads 1 --steps 300 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
import warnings

import torch
from torch import nn

EMB, HIDDEN, LAYERS, DROPOUT, BATCH, BPTT, LR, CLIP = 200, 200, 2, 0.2, 20, 35, 20.0, 0.25


def cpu_times() -> tuple[float, float, float]:
    """(wall, user, system) seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), usage.ru_utime, usage.ru_stime


def load_streams(synthetic: bool) -> tuple[torch.Tensor, int]:
    """The train streams ``[B, N]`` (batch-first, as the data module serves them) and the vocabulary size."""
    if synthetic:
        g = torch.Generator().manual_seed(0)
        return torch.randint(0, 10_000, (BATCH, 46_479), generator=g), 10_000
    from recurrentkit.data.lm import LanguageModelingDataModule

    dm = LanguageModelingDataModule(preset="ptb", tokenizer="word", batch_size=BATCH, bptt=BPTT)
    dm.prepare_data()
    dm.setup("fit")
    return dm.train_dataloader().streams, dm.vocab_size


class LoopLM(nn.Module):
    """Embedding -> dropout -> 2-layer nn.LSTM (dropout between layers) -> dropout -> Linear, sequence-first."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.drop = nn.Dropout(DROPOUT)
        self.encoder = nn.Embedding(vocab, EMB)
        self.rnn = nn.LSTM(EMB, HIDDEN, LAYERS, dropout=DROPOUT)
        self.decoder = nn.Linear(HIDDEN, vocab)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x, state):
        out, state = self.rnn(self.drop(self.encoder(x)), state)
        return self.decoder(self.drop(out)), state


def run_loop(streams: torch.Tensor, vocab: int, warmup: int, steps: int) -> tuple[float, float, float]:
    """(wall, user, system) seconds of the timed steps of the hand-written loop."""
    torch.manual_seed(0)
    source = streams.t().contiguous()  # [N, B]: the example's batchify layout
    model = LoopLM(vocab)
    model.train()
    criterion = nn.CrossEntropyLoss()
    state = (torch.zeros(LAYERS, BATCH, HIDDEN), torch.zeros(LAYERS, BATCH, HIDDEN))
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            start = cpu_times()
        i = step * BPTT
        data, target = source[i:i + BPTT], source[i + 1:i + 1 + BPTT].reshape(-1)
        model.zero_grad()
        state = tuple(s.detach() for s in state)
        output, state = model(data, state)
        loss = criterion(output.view(-1, vocab), target)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-LR)
    end = cpu_times()
    return tuple(b - a for a, b in zip(start, end))


class _FirstBatches:
    """The data module's train loader, cut to its first ``n`` batches (a plain iterable, as the loader is)."""

    def __init__(self, loader, n: int) -> None:
        self.loader, self.n = loader, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for index, batch in enumerate(self.loader):
            if index == self.n:
                return
            yield batch


def run_ours(streams: torch.Tensor, vocab: int, warmup: int, steps: int) -> tuple[float, float, float]:
    """(wall, user, system) seconds of the same timed steps through LanguageModelTask + Trainer."""
    import lightning as L
    from lightning.pytorch.callbacks import Callback

    from recurrentkit.data.lm_stream import BPTTBatches
    from recurrentkit.tasks import LanguageModelTask

    class Timer(Callback):
        start = end = None

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == warmup:
                self.start = cpu_times()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if batch_idx == warmup + steps - 1:
                self.end = cpu_times()

    torch.manual_seed(0)
    task = LanguageModelTask(vocab, optimizer=lambda params: torch.optim.SGD(params, lr=LR), cell="lstm",
                             embedding_size=EMB, hidden_size=HIDDEN, num_layers=LAYERS, dropout=DROPOUT,
                             input_dropout=DROPOUT, hidden_dropout=DROPOUT)
    timer = Timer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, gradient_clip_val=CLIP, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                        limit_val_batches=0, use_distributed_sampler=False, callbacks=[timer])
    trainer.fit(task, _FirstBatches(BPTTBatches(streams, BPTT), warmup + steps))
    return tuple(b - a for a, b in zip(timer.start, timer.end))


def measure(side: str, args: argparse.Namespace) -> tuple[float, float, float]:
    """Run one side in a fresh process; its (wall, user, system) seconds."""
    command = [sys.executable, __file__, "--side", side, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--loop-malloc", args.loop_malloc]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    if args.synthetic:
        command.append("--synthetic")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return tuple(json.loads(done.stdout.strip().splitlines()[-1]))


def run_side(args: argparse.Namespace) -> None:
    """The child process: time one side and print its (wall, user, system) as a JSON line."""
    if args.side == "ours" or args.loop_malloc == "kept":
        from recurrentkit.allocator import keep_freed_memory

        keep_freed_memory()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    streams, vocab = load_streams(args.synthetic)
    if (args.warmup + args.steps) * BPTT + 1 > streams.shape[1]:
        raise SystemExit(f"--warmup + --steps must be <= {(streams.shape[1] - 1) // BPTT} (one epoch)")
    run = run_loop if args.side == "loop" else run_ours
    print(json.dumps(run(streams, vocab, args.warmup, args.steps)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for both (default: torch's)")
    parser.add_argument("--synthetic", action="store_true", help="random tokens instead of PTB")
    parser.add_argument("--loop-malloc", choices=("default", "kept"), default="default",
                        help="the loop's allocator: glibc's defaults (as the example runs) or ours")
    parser.add_argument("--side", choices=("loop", "ours"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side is not None:
        return run_side(args)
    epoch_batches = -(-46_478 // BPTT)  # PTB (and --synthetic): 929,589 tokens = 20 streams of 46,479
    tokens = args.steps * BATCH * BPTT
    loop, ours = [], []
    for r in range(args.repeats):
        loop.append(measure("loop", args))
        ours.append(measure("ours", args))
        print(f"repeat {r}: loop {tokens / loop[-1][0]:,.0f} tok/s (sys {loop[-1][2]:.2f} s)   "
              f"ours {tokens / ours[-1][0]:,.0f} tok/s (sys {ours[-1][2]:.2f} s)", flush=True)

    def per_epoch(runs, field):
        return statistics.median(r[field] for r in runs) / args.steps * epoch_batches

    tl, to = (statistics.median(tokens / r[0] for r in runs) for runs in (loop, ours))
    threads = args.threads if args.threads is not None else torch.get_num_threads()
    print(f"median over {args.repeats} repeats: {args.steps} steps of {BATCH}x{BPTT} tokens, "
          f"{threads} thread(s), torch {torch.__version__}, loop allocator: {args.loop_malloc}")
    print(f"  hand-written loop (word_language_model) : {tl:8,.0f} tokens/s")
    print(f"  LanguageModelTask + Trainer             : {to:8,.0f} tokens/s")
    print(f"  ratio ours / loop                       : {to / tl:.3f}x (goal >= 1.0x)")
    cl, co = (statistics.median(tokens / (r[1] + r[2]) for r in runs) for runs in (loop, ours))
    print(f"  per CPU second (user + system), loop / ours: {cl:,.0f} / {co:,.0f} tokens: {co / cl:.3f}x "
          "(the steadier figure on a shared machine)")
    print(f"  CPU per epoch-equivalent ({epoch_batches} batches), user / system:")
    for name, runs in (("loop", loop), ("ours", ours)):
        print(f"    {name}: {per_epoch(runs, 1):7.1f} s / {per_epoch(runs, 2):6.1f} s")
    print(f"  system time ours / loop                 : {per_epoch(ours, 2) / max(per_epoch(loop, 2), 1e-9):.2f}x "
          f"(goal <= 1.5x)")


if __name__ == "__main__":
    main()
