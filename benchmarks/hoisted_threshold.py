"""Where ``HoistedLoop`` starts to beat the plain step loop: forward+backward of one cell on both paths, same run.

Usage::

    python benchmarks/hoisted_threshold.py                          # B=20 and 64, H=100..650, elman/simplified_gru/gru
    python benchmarks/hoisted_threshold.py --batch 20 --hidden 300 450 --cells gru

Prints, per configuration, the median ms/iter of each path (CPU time of this process, one thread, so a busy machine
disturbs it less) and the ratio hoisted / loop (lower: ``HoistedLoop`` is faster). The layer takes ``HoistedLoop``
when the recurrent weight has at least ``recurrentkit.cells.kernels.HOISTED_MIN_WEIGHT`` elements; this script is
how that threshold was set.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import recurrentkit as rk
from recurrentkit.cells.kernels import HOISTED_MIN_WEIGHT, run_path

STEPS = 35


def time_path(name: str, path: str, hidden: int, batch: int, rounds: int) -> float:
    """Median CPU ms of forward+backward of ``name`` [hidden] over ``STEPS`` x ``batch`` on ``path``."""
    torch.manual_seed(0)
    x = torch.randn(STEPS, batch, hidden, requires_grad=True)
    cell = rk.create_cell(name, hidden, hidden)

    def once() -> None:
        out, _ = run_path(path, cell, x, cell.initial_state(batch))
        out.pow(2).mean().backward()

    for _ in range(2):
        once()
    times = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(2):
            once()
        times.append((time.process_time() - start) / 2)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[20, 64])
    parser.add_argument("--hidden", type=int, nargs="+", default=[100, 200, 300, 450, 650])
    parser.add_argument("--cells", nargs="+", default=["elman", "simplified_gru", "gru"])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, T={STEPS}, process clock; HOISTED_MIN_WEIGHT={HOISTED_MIN_WEIGHT:,}\n")
    print("| B | H | cell | weight elements | loop ms | hoisted ms | hoisted / loop |")
    print("|---:|---:|---|---:|---:|---:|---:|")
    for batch in args.batch:
        for hidden in args.hidden:
            for name in args.cells:
                # interleaved twice, the faster of each kept: a noisy neighbour slows both paths alike
                loop, hoisted = [], []
                for _ in range(2):
                    loop.append(time_path(name, "loop", hidden, batch, args.rounds))
                    hoisted.append(time_path(name, "hoisted", hidden, batch, args.rounds))
                loop, hoisted = min(loop), min(hoisted)
                weight = rk.create_cell(name, hidden, hidden).recurrent_weight().numel()
                print(f"| {batch} | {hidden} | {name} | {weight:,} | {loop:.1f} | {hoisted:.1f} | "
                      f"{hoisted / loop:.2f} |", flush=True)


if __name__ == "__main__":
    main()
