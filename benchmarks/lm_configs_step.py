"""Time one training step (forward, backward, optimizer) of a few language-model configurations, in one process.

    python benchmarks/lm_configs_step.py B T V PRECISION NAME [NAME ...]

``B`` x ``T`` token batches over a vocabulary of ``V`` ids, ``PRECISION`` ``fp32`` or ``bf16`` (CPU autocast), 2
threads, glibc's mmap threshold fixed as the ``recurrentkit`` command does; prints the mean of 20 steps after 5
warm-up steps. Names: ``lstm``, ``min_gru`` (2 x 200, embedding 200, the word_language_model configuration),
``c-lstm`` (1 x 512, embedding 64: the char main job), ``c-mingru2x512`` (recipes/shakespeare/char-min-gru.yaml).
"""

import sys
import time

import torch

from recurrentkit.allocator import keep_freed_memory
from recurrentkit.models.lm import RNNLanguageModel

CONFIGS = {
    "lstm": dict(cell="lstm", embedding_size=200, hidden_size=200, num_layers=2, dropout=0.2),
    "min_gru": dict(cell="min_gru", embedding_size=200, hidden_size=200, num_layers=2, dropout=0.2),
    "c-lstm": dict(cell="lstm", embedding_size=64, hidden_size=512, num_layers=1),
    "c-mingru2x512": dict(cell="min_gru", embedding_size=64, hidden_size=512, num_layers=2),
}


def main(argv: list[str]) -> None:
    if len(argv) < 5 or argv[3] not in ("fp32", "bf16") or any(name not in CONFIGS for name in argv[4:]):
        raise SystemExit(__doc__ + f"\nknown names: {sorted(CONFIGS)}")
    keep_freed_memory()
    torch.set_num_threads(2)
    batch, steps, vocab, precision = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    tokens = torch.randint(0, vocab, (batch, steps))
    for name in argv[4:]:
        model = RNNLanguageModel(vocab, **CONFIGS[name])
        optimizer = torch.optim.SGD(model.parameters(), 1.0)

        def step(model: RNNLanguageModel = model, optimizer: torch.optim.Optimizer = optimizer) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                hidden, _ = model(tokens)
                loss = model.loss(hidden, tokens)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        for _ in range(5):
            step()
        start, repeats = time.perf_counter(), 20
        for _ in range(repeats):
            step()
        seconds = (time.perf_counter() - start) / repeats
        rate = batch * steps / seconds
        print(f"{name} B{batch} T{steps} {precision}: {seconds * 1000:.1f} ms/step, {rate:.0f} tokens/s")


if __name__ == "__main__":
    main(sys.argv[1:])
