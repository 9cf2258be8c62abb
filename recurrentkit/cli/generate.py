"""``recurrentkit generate``: sample text from a trained language model's checkpoint."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..checkpointing import CheckpointError, load_checkpoint
from .lightning import _import


def generate_main(argv: list[str]) -> int:
    """``recurrentkit generate --ckpt_path PATH --prompt TEXT``: sample from a trained language model."""
    parser = argparse.ArgumentParser(prog="recurrentkit generate", description=generate_main.__doc__)
    parser.add_argument("--ckpt_path", required=True, help="checkpoint written by `recurrentkit fit`")
    parser.add_argument("--prompt", default="\n", help="text to condition on")
    parser.add_argument("--max_new_tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=1.0, help="0 means greedy")
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--model_class", default="recurrentkit.tasks.language_model.LanguageModelTask")
    args = parser.parse_args(argv)
    path = Path(args.ckpt_path)
    if not path.is_file():
        parser.error(f"checkpoint not found: {path}")
    if not math.isfinite(args.temperature) or args.temperature < 0:
        parser.error(f"--temperature must be a finite number >= 0 (0 is greedy), got {args.temperature}")
    task_cls = _import(args.model_class)
    if task_cls is None:
        parser.error(f"cannot import {args.model_class}")
    try:
        load_checkpoint(path)  # an empty or corrupt file is named here, not deep inside torch.load
        task = task_cls.load_from_checkpoint(str(path), map_location="cpu")
        text = task.generate(args.prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                             top_k=args.top_k, seed=args.seed)
    except (CheckpointError, ValueError) as error:
        parser.error(str(error))
    print(text)
    return 0


__all__ = ["generate_main"]
