"""Parameter count and training throughput of the One Billion Word recipes, on a synthetic stream.

For each recipe in ``recipes/lm1b/`` (a LightningCLI YAML) the model of ``model.init_args`` is built with the full
One Billion Word vocabulary (793,471 words) and:

* ``--params-only``: instantiated on the meta device (no memory), parameters counted;
* ``--flops``: the training FLOPs per token (forward + backward matmuls, counted by ``torch.utils.flop_counter`` on
  the meta device at batch 128 x BPTT 20) and the H100 hours one epoch and the recipe's ``max_epochs`` would take at
  the H100 SXM dense BF16 peak (989 TFLOP/s), and the hours the dense fp32 optimizer update alone would take at
  the H100 SXM memory bandwidth (3.35 TB/s: every step writes each gradient and reads/writes each parameter and
  optimizer-state tensor). The larger of the two is a floor, not an estimate: an RNN step at batch 128 is a chain of
  small per-timestep matmuls, bound by kernel latency, so real runs take several times longer. An estimate needs
  this script's default mode run on the GPU;
* otherwise: trained for ``--steps`` timed steps (after ``--warmup``) on a synthetic log-uniform (Zipf-like) id
  stream, as the task trains (carried, detached state; the recipe's output layer and optimizer, or ``--optimizer
  sgd`` to leave out the optimizer state; gradient clipping at the recipe's value). Prints tokens/s and the hours one
  epoch of about 0.8B training tokens would take at that speed on this device.

    python benchmarks/lm1b_throughput.py --params-only
    python benchmarks/lm1b_throughput.py --flops
    python benchmarks/lm1b_throughput.py --recipe recipes/lm1b/lstm-2048-adaptive.yaml --batch-size 32 --steps 5
    python benchmarks/lm1b_throughput.py --data-speed      # time building the memory-mapped cache instead

The H100 figures in the recipes need this script run on an H100 (``--device cuda``); CPU figures are CPU figures.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from recurrentkit.cli.lightning import instantiate_model, parse_recipe
from recurrentkit.models.lm import RNNLanguageModel

LM1B_VOCAB = 793_471
LM1B_TRAIN_TOKENS = 800_000_000  # about 0.8B training words (Chelba et al. 2013's round figure)
H100_BF16_DENSE_FLOPS = 989e12  # H100 SXM dense BF16 tensor-core peak (NVIDIA datasheet)
H100_HBM_BYTES_PER_S = 3.35e12  # H100 SXM HBM3 bandwidth (NVIDIA datasheet)
OPTIMIZER_STATE_TENSORS = {"SGD": 0, "Adagrad": 1, "Adam": 2, "AdamW": 2}  # fp32 tensors per parameter
ROOT = Path(__file__).resolve().parents[1]


def parse(path: Path):
    """A recipe parsed by the ``recurrentkit`` command's own parser (nothing instantiated, no data read)."""
    return parse_recipe(["-c", str(path)])


def optimizer_spec(config) -> dict:
    """``{"class_path": ..., "init_args": ...}`` of the recipe's optimizer (``{}``: the task's default SGD)."""
    spec = config.model.init_args.get("optimizer")
    return spec.as_dict() if hasattr(spec, "as_dict") else {}


def recipe_task(config, vocab_size: int, device: str | torch.device):
    """The recipe's ``LanguageModelTask`` (its ``.model`` and ``.optimizer_factory``), built as ``recurrentkit fit``
    builds it, on ``device``."""
    with torch.device(device):
        return instantiate_model(config, vocab_size=vocab_size)


def recipe_model(config, vocab_size: int, device: str | torch.device) -> RNNLanguageModel:
    return recipe_task(config, vocab_size, device).model


def build_model(kwargs: dict, vocab_size: int, device: str | torch.device) -> RNNLanguageModel:
    with torch.device(device):
        return RNNLanguageModel(vocab_size, **kwargs)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def zipf_stream(n: int, vocab_size: int, device, seed: int = 0) -> torch.Tensor:
    """``n`` ids drawn log-uniformly from ``[0, vocab_size)`` (frequent ids first, as the real vocab is sorted)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g, dtype=torch.float64)
    ids = (torch.exp(u * torch.log(torch.tensor(vocab_size + 1.0, dtype=torch.float64))).floor().long() - 1)
    return ids.clamp_(0, vocab_size - 1).to(device)


def throughput(model: RNNLanguageModel, optimizer, clip: float | None, batch_size: int, bptt: int, steps: int,
               warmup: int, device) -> tuple[float, float, float]:
    """``(tokens/s, seconds/step, last loss)`` over ``steps`` timed training steps."""
    total = steps + warmup
    stream = zipf_stream(batch_size * (total * bptt + 1), model.vocab_size, device).view(batch_size, -1)
    model.train()
    state = None
    start = 0.0
    loss = torch.tensor(float("nan"))
    for i in range(total):
        if i == warmup:
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        x = stream[:, i * bptt:(i + 1) * bptt]
        y = stream[:, i * bptt + 1:(i + 1) * bptt + 1]
        hidden, state = model(x, state)
        state = [type(s)(*(t.detach() for t in s)) for s in state]
        loss = model.loss(hidden, y, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return steps * batch_size * bptt / elapsed, elapsed / steps, loss.item()


def log_uniform_fraction(low: int, high: int, vocab_size: int) -> float:
    """Probability that a :func:`zipf_stream` id falls in ``[low, high)``."""
    return math.log((high + 1) / (low + 1)) / math.log(vocab_size + 1)


def adaptive_loss_on_meta(output, hidden: torch.Tensor) -> torch.Tensor:
    """A stand-in for the adaptive-softmax loss with the same matmuls: the head on every row, tail cluster ``i`` on
    the share of rows a :func:`zipf_stream` sends to it (routing needs data, which the meta device has not)."""
    adaptive = output.adaptive
    rows, vocab = hidden.shape[0], output.vocab_size
    total = adaptive.head(hidden).logsumexp(-1).sum()
    bounds = [*output.cutoffs, vocab]
    for i, tail in enumerate(adaptive.tail):
        n = round(rows * log_uniform_fraction(bounds[i], bounds[i + 1], vocab))
        if n:
            total = total + tail(hidden[:n]).logsumexp(-1).sum()
    return total / rows


def training_flops_per_token(model: RNNLanguageModel, batch_size: int = 128, bptt: int = 20) -> float:
    """Forward + backward FLOPs of one training step divided by its tokens (meta device: nothing is allocated)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(batch_size, bptt, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        hidden, _ = model(x)
        if model.output_kind == "adaptive":
            loss = adaptive_loss_on_meta(model.decoder, hidden.reshape(-1, hidden.shape[-1]))
        else:
            loss = model.loss(hidden, x, x)
        loss.backward()
    return counter.get_total_flops() / (batch_size * bptt)


def optimizer_bytes_per_step(params: int, optimizer_spec: dict) -> float:
    """fp32 bytes one step moves for the dense update: gradient written, parameter read + written, each state
    tensor read + written (``(4 + 2 * states) * 4`` bytes per parameter; SGD for an empty spec)."""
    name = (optimizer_spec.get("class_path") or "SGD").rpartition(".")[2]
    if name not in OPTIMIZER_STATE_TENSORS:
        raise ValueError(f"no state count for optimizer {name!r}; known: {sorted(OPTIMIZER_STATE_TENSORS)}")
    return params * 4.0 * (4 + 2 * OPTIMIZER_STATE_TENSORS[name])


def data_speed(lines_per_shard: int = 40_000, shards: int = 2, seed: int = 0) -> None:
    """Write a synthetic release (Zipf words, 25 per line) to a temp dir and time the cache build and reload."""
    import tempfile

    import numpy as np

    from recurrentkit.data.lm1b import HELDOUT_DIR, TRAIN_DIR, OneBillionWordDataModule

    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(200_000)])
    p = 1.0 / np.arange(1, words.size + 1)
    p /= p.sum()

    def text(n: int) -> str:
        return "\n".join(" ".join(row) for row in words[rng.choice(words.size, size=(n, 25), p=p)]) + "\n"

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / TRAIN_DIR).mkdir()
        (root / HELDOUT_DIR).mkdir()
        for i in range(1, shards + 1):
            (root / TRAIN_DIR / f"news.en-{i:05d}-of-00100").write_text(text(lines_per_shard))
        for i in (0, 1):
            (root / HELDOUT_DIR / f"news.en.heldout-{i:05d}-of-00050").write_text(text(lines_per_shard // 20))
        dm = OneBillionWordDataModule(str(root))
        t0 = time.perf_counter()
        size = dm.vocab_size
        built = time.perf_counter() - t0
        tokens = sum(dm.token_stream(s).numel() for s in ("train", "validation", "test"))
        t0 = time.perf_counter()
        again = OneBillionWordDataModule(str(root))
        again.vocab_size  # noqa: B018
        again.token_stream("train")
        reload = time.perf_counter() - t0
    print(f"cache build: {tokens:,d} tokens, vocab {size:,d}, {built:.1f} s = {tokens / built:,.0f} tokens/s "
          f"(0.8B tokens: ~{LM1B_TRAIN_TOKENS / (tokens / built) / 60:.0f} min); reload {reload:.2f} s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", type=Path, action="append", help="recipe YAML (repeatable; default: all lm1b ones)")
    ap.add_argument("--params-only", action="store_true", help="count parameters on the meta device, no training")
    ap.add_argument("--flops", action="store_true", help="count training FLOPs per token and a floor on H100 hours")
    ap.add_argument("--vocab-size", type=int, default=LM1B_VOCAB)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--bptt", type=int, default=20)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--optimizer", choices=("recipe", "sgd"), default="recipe")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU")
    ap.add_argument("--data-speed", action="store_true", help="time the data cache build on a synthetic release")
    args = ap.parse_args(argv)
    if args.data_speed:
        data_speed()
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    recipes = args.recipe or sorted(p for p in (ROOT / "recipes" / "lm1b").glob("*.yaml") if p.stem != "kn5")
    for path in recipes:
        config = parse(path)
        opt_spec, trainer = optimizer_spec(config), config.trainer
        meta = recipe_model(config, args.vocab_size, "meta")
        n = count_params(meta)
        del meta
        line = f"{path.stem:28s} params {n:>14,d}"
        if args.params_only:
            print(line)
            continue
        if args.flops:
            per_token = training_flops_per_token(recipe_model(config, args.vocab_size, "meta"), args.batch_size,
                                                 args.bptt)
            epochs = trainer.get("max_epochs") or 1
            compute = per_token * LM1B_TRAIN_TOKENS / H100_BF16_DENSE_FLOPS / 3600
            steps = LM1B_TRAIN_TOKENS / (args.batch_size * args.bptt)
            memory = optimizer_bytes_per_step(n, opt_spec) * steps / H100_HBM_BYTES_PER_S / 3600
            floor = max(compute, memory)
            print(f"{line}  {per_token / 1e6:,.0f} MFLOP/token  H100 hours per epoch: FLOPs at peak {compute:.2f}, "
                  f"optimizer traffic {memory:.2f}  -> floor >= {floor:.2f} per epoch, >= {epochs * floor:.1f} for "
                  f"{epochs} epochs")
            continue
        torch.manual_seed(0)
        task = recipe_task(config, args.vocab_size, args.device)
        model = task.model
        if args.optimizer == "recipe":
            opt = task.optimizer_factory(model.parameters())
        else:
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
        tps, sps, loss = throughput(model, opt, trainer.get("gradient_clip_val"), args.batch_size, args.bptt,
                                    args.steps, args.warmup, args.device)
        device = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
            f"cpu ({torch.get_num_threads()} threads)"
        print(f"{line}  device {device}  batch {args.batch_size}x{args.bptt}  optimizer "
              f"{type(opt).__name__}  {tps:,.0f} tokens/s  {sps:.3f} s/step  loss {loss:.3f}  "
              f"one epoch (~0.8B tokens) = {LM1B_TRAIN_TOKENS / tps / 3600:,.1f} h")
        del task, model, opt


if __name__ == "__main__":
    main()
