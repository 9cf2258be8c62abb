"""Model-only step rates of the converged table rows: forward + backward + clip + Adam, no Lightning, no data.

For each recipe given (default: every ``recipes/table/converged/*.yaml``), build its ``RNNLanguageModel`` at PTB's
vocabulary (10,000), time 20 training steps of batch x 35 random ids after 3 warm-up steps, and 20 evaluation batches
of 10 x 35, and print one JSON line: parameters, training and evaluation tokens/s, and the minutes of one PTB epoch
(929,589 training tokens plus a 73,760-token validation). ``recurrentkit table --converge --measure N`` times the
same rows through the real data pipeline and Trainer; this is the quick, quiet-machine version.

    python benchmarks/table_rows.py
    python benchmarks/table_rows.py recipes/table/converged/lstm-adaptive.yaml hidden_size=384
    python benchmarks/table_rows.py --bf16     # under CPU bfloat16 autocast, as ``precision: bf16-mixed`` runs
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import torch
import yaml

from recurrentkit.allocator import keep_freed_memory
from recurrentkit.models.lm import RNNLanguageModel

VOCAB, BPTT, TRAIN_TOKENS, VALID_TOKENS = 10_000, 35, 929_589, 73_760


def row_rates(recipe: Path, overrides: dict, bf16: bool = False) -> dict:
    config = yaml.safe_load(recipe.read_text())
    kwargs = {k: v for k, v in config["model"]["init_args"].items()
              if k not in ("optimizer", "lr_scheduler", "ar", "tar", "char_level")}
    kwargs.update(overrides)
    batch = config["data"]["init_args"].get("batch_size", 32)
    torch.manual_seed(0)
    model = RNNLanguageModel(VOCAB, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    ids = torch.randint(0, VOCAB, (batch, BPTT + 1))

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step() -> None:
        optimizer.zero_grad()
        with autocast():
            hidden, _ = model(ids[:, :BPTT])
            loss = model.loss(hidden, ids[:, 1:], ids[:, :BPTT])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    model.train()
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(20):
        step()
    train_rate = 20 * batch * BPTT / (time.perf_counter() - start)
    model.eval()
    eval_ids = torch.randint(0, VOCAB, (10, BPTT + 1))
    with torch.no_grad(), autocast():
        start = time.perf_counter()
        for _ in range(20):
            hidden, _ = model(eval_ids[:, :BPTT])
            model.loss(hidden, eval_ids[:, 1:], eval_ids[:, :BPTT])
        eval_rate = 20 * 10 * BPTT / (time.perf_counter() - start)
    epoch_min = (TRAIN_TOKENS / train_rate + VALID_TOKENS / eval_rate) / 60
    return {"row": recipe.stem, "overrides": overrides, "bf16": bf16,
            "params": sum(p.numel() for p in model.parameters()),
            "train_tokens_per_s": round(train_rate), "eval_tokens_per_s": round(eval_rate),
            "epoch_min": round(epoch_min, 2)}


def main() -> None:
    keep_freed_memory()  # as the recurrentkit command does
    args = sys.argv[1:]
    recipes = [Path(a) for a in args if a.endswith(".yaml")] or sorted(Path("recipes/table/converged").glob("*.yaml"))
    overrides = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args if "=" in a)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for recipe in recipes:
        print(json.dumps(row_rates(recipe, overrides, bf16="--bf16" in args)), flush=True)


if __name__ == "__main__":
    main()
