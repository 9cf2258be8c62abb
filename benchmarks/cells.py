"""Forward+backward throughput of every registered cell through ``Recurrent``, against ``torch.nn`` in the same run.

Usage::

    python benchmarks/cells.py                    # H=200 and H=650, 5 rounds
    python benchmarks/cells.py --hidden 650 --rounds 7 --compile   # add compile=True rows (slow cold compiles)
    python benchmarks/cells.py --quick            # H=200 only, 2 rounds, short ESN run
    python benchmarks/cells.py --no-padded        # without the padded-batch rows
    python benchmarks/cells.py --parallel-only --threads 1 --clock process   # only the min_gru/min_lstm rows

Padded rows (``, padded``) run the same layer on a batch with ``lengths`` (seeded, between T/2 and T, the longest
T), against ``nn.LSTM`` on the same batch packed with ``pack_padded_sequence``; they show whether a padded batch
keeps its cell's fast path.

Every round cycles through all configurations (interleaved), so a noisy neighbour slows every configuration of a
round alike; each configuration's figure is the median over rounds of its mean time per iteration. Ratios are
time ratios (lower is faster): ``vs own`` compares lstm/gru/elman with the ``torch.nn`` module computing the same
thing, ``vs LSTM`` and ``vs RNN`` compare with ``torch.nn.LSTM`` and ``torch.nn.RNN(tanh)``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

import recurrentkit as rk

BATCH, STEPS, LAYERS = 20, 35, 2
OWN_REFERENCE = {"lstm": "nn.LSTM", "gru": "nn.GRU", "elman": "nn.RNN(tanh)"}


@dataclass
class Config:
    """One row of the table: a module to time and the ``torch.nn`` module it is compared with."""

    label: str
    build: Callable[[], nn.Module]
    own: str | None = None
    padded: bool = False
    times: list[float] = field(default_factory=list)
    module: nn.Module | None = None


class Packed(nn.Module):
    """A ``torch.nn`` RNN run on a padded batch through ``pack_padded_sequence`` (the reference of padded rows)."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, object]:
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, state = self.rnn(packed)
        return nn.utils.rnn.pad_packed_sequence(out, total_length=x.shape[0])[0], state


def _configs(hidden: int, compiled: bool, padded: bool = True) -> list[Config]:
    def ref(kind: str) -> Callable[[], nn.Module]:
        return lambda: getattr(nn, kind)(hidden, hidden, LAYERS)

    configs = [Config("nn.LSTM", ref("LSTM")), Config("nn.GRU", ref("GRU")),
               Config("nn.RNN(tanh)", lambda: nn.RNN(hidden, hidden, LAYERS, nonlinearity="tanh"))]

    def recurrent(cell: str, **kwargs) -> Callable[[], nn.Module]:
        return lambda: rk.Recurrent(cell, hidden, hidden, num_layers=LAYERS, **kwargs)

    for name in rk.list_cells():
        configs.append(Config(name, recurrent(name), own=OWN_REFERENCE.get(name)))
        if name in OWN_REFERENCE:
            configs.append(Config(f"{name} (force_loop)", recurrent(name, force_loop=True), own=OWN_REFERENCE[name]))
    configs.append(Config("lstm(peepholes)", recurrent("lstm", peepholes=True), own="nn.LSTM"))
    configs.append(Config("lstm(layer_norm)", recurrent("lstm", layer_norm=True), own="nn.LSTM"))
    if padded:
        configs.append(Config("nn.LSTM, padded", lambda: Packed(ref("LSTM")()), padded=True))
        for name in rk.list_cells():
            configs.append(Config(f"{name}, padded", recurrent(name), own="nn.LSTM, padded", padded=True))
        configs.append(Config("lstm(peepholes), padded", recurrent("lstm", peepholes=True), own="nn.LSTM, padded",
                              padded=True))
    if compiled:
        for label, build in [("leaky", recurrent("leaky", compile=True)),
                             ("jordan", recurrent("jordan", compile=True)),
                             ("lstm(peepholes)", recurrent("lstm", peepholes=True, compile=True)),
                             ("lstm(layer_norm)", recurrent("lstm", layer_norm=True, compile=True))]:
            configs.append(Config(f"{label} compile=True", build, own="nn.LSTM" if "lstm" in label else None))
    return configs


def _step(module: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None) -> None:
    output = module(x)[0] if lengths is None else module(x, lengths=lengths)[0]
    output.pow(2).mean().backward()
    for p in module.parameters():
        p.grad = None
    x.grad = None


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}
clock = time.perf_counter


def _time(module: nn.Module, x: torch.Tensor, min_seconds: float, lengths: torch.Tensor | None = None) -> float:
    """Mean seconds per forward+backward over at least ``min_seconds`` (and at least 2 iterations)."""
    iterations, start = 0, clock()
    while True:
        _step(module, x, lengths)
        iterations += 1
        elapsed = clock() - start
        if elapsed >= min_seconds and iterations >= 2:
            return elapsed / iterations


def padded_lengths(batch: int = BATCH, steps: int = STEPS, seed: int = 0) -> torch.Tensor:
    """Seeded lengths between ``steps // 2`` and ``steps``, the longest exactly ``steps``."""
    lengths = torch.randint(steps // 2, steps + 1, (batch,), generator=torch.Generator().manual_seed(seed))
    lengths[0] = steps
    return lengths


def bench_cells(hidden: int, rounds: int, compiled: bool, min_seconds: float, padded: bool = True) -> list[Config]:
    """Time every configuration at one hidden size; returns the configurations with their per-round times."""
    torch.manual_seed(0)
    x = torch.randn(STEPS, BATCH, hidden, requires_grad=True)  # as below a trainable embedding (esn needs it)
    lengths = padded_lengths()
    configs = _configs(hidden, compiled, padded)
    for config in configs:  # build + warm up (and compile) before any timing
        config.module = config.build()
        for _ in range(2):
            _step(config.module, x, lengths if config.padded else None)
    for _ in range(rounds):
        for config in configs:
            config.times.append(_time(config.module, x, min_seconds, lengths if config.padded else None))
    return configs


def table(configs: list[Config], hidden: int) -> str:
    """Markdown table of tokens/s and time ratios (a padded row's "own" reference is nn.LSTM on the packed batch)."""
    median = {c.label: statistics.median(c.times) for c in configs}
    lines = [f"H={hidden}, B={BATCH}, T={STEPS}, {LAYERS} layers, forward+backward",
             "", "| config | ms/iter | tokens/s | vs own torch.nn | vs nn.LSTM | vs nn.RNN(tanh) |",
             "|---|---:|---:|---:|---:|---:|"]
    for c in configs:
        t = median[c.label]
        own = f"{t / median[c.own]:.2f}x" if c.own else "-"
        lines.append(f"| {c.label} | {t * 1e3:.1f} | {BATCH * STEPS / t:,.0f} | {own} | "
                     f"{t / median['nn.LSTM']:.2f}x | {t / median['nn.RNN(tanh)']:.2f}x |")
    return "\n".join(lines)


class _Projections(nn.Module):
    """The floor of a min_gru/min_lstm stack: its input projections alone (``gates * H`` outputs per layer, the
    first ``H`` fed on), no gates and no scan. Returns a tuple like the recurrent modules."""

    def __init__(self, hidden: int, gates: int, layers: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.layers = nn.ModuleList(nn.Linear(hidden, gates * hidden) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        for layer in self.layers:
            x = layer(x)[..., :self.hidden]
        return x, None


PARALLEL = {"batch": 16, "hidden": 512, "layers": 2, "steps": (35, 1024)}
PARALLEL_GOALS = {35: 0.5, 1024: 0.25}  # issue 15: min_gru/min_lstm time / nn.LSTM time


def bench_parallel(steps: int, rounds: int, min_seconds: float, device: str = "cpu") -> list[Config]:
    """The cells that train in parallel over time (min_gru, min_lstm) against ``nn.LSTM`` (cuDNN on a GPU): B=16,
    H=512, 2 layers, forward + backward, interleaved rounds."""
    batch, hidden, layers = PARALLEL["batch"], PARALLEL["hidden"], PARALLEL["layers"]
    torch.manual_seed(0)
    x = torch.randn(steps, batch, hidden, device=device, requires_grad=True)
    configs = [Config("nn.LSTM", lambda: nn.LSTM(hidden, hidden, layers))]
    for name, gates in (("min_gru", 2), ("min_lstm", 3)):
        configs.append(Config(name, lambda name=name: rk.Recurrent(name, hidden, hidden, num_layers=layers)))
        configs.append(Config(f"{name} matmuls only", lambda gates=gates: _Projections(hidden, gates, layers)))
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for config in configs:
        config.module = config.build().to(device)
        for _ in range(2):
            _step(config.module, x)
    for _ in range(rounds):
        for config in configs:
            sync()
            config.times.append(_time(config.module, x, min_seconds))
            sync()
    return configs


def parallel_table(results: dict[int, list[Config]], device: str) -> str:
    """Markdown rows: ms/iter and the ratio against nn.LSTM measured in the same run, with the goal."""
    batch, hidden, layers = PARALLEL["batch"], PARALLEL["hidden"], PARALLEL["layers"]
    lines = [f"Parallel-in-time cells: B={batch}, H={hidden}, {layers} layers, forward+backward, {device}", "",
             "| T | config | ms/iter | tokens/s | vs nn.LSTM | goal |", "|---:|---|---:|---:|---:|---:|"]
    for steps, configs in results.items():
        median = {c.label: statistics.median(c.times) for c in configs}
        for c in configs:
            t = median[c.label]
            floor = c.label == "nn.LSTM" or c.label.endswith("only") or steps not in PARALLEL_GOALS
            goal = "-" if floor else f"<= {PARALLEL_GOALS[steps]:.2f}x"
            lines.append(f"| {steps} | {c.label} | {t * 1e3:.1f} | {batch * steps / t:,.0f} | "
                         f"{t / median['nn.LSTM']:.2f}x | {goal} |")
    return "\n".join(lines)


def bench_esn(steps: int, rounds: int, units: int = 1000, density: float = 0.1) -> tuple[float, list[float]]:
    """Median steps/s of an ESN (``units`` units, ``density``) over one sequence of ``steps`` steps, no grad."""
    torch.manual_seed(0)
    layer = rk.Recurrent("esn", 1, units, density=density)
    x = torch.randn(steps, 1, 1)
    rates = []
    with torch.no_grad():
        layer(x[:10])
        for _ in range(rounds):
            start = clock()
            layer(x)
            rates.append(steps / (clock() - start))
    return statistics.median(rates), rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=None, help="hidden sizes (default 200 650)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="H=200, 2 rounds, no compiled variants")
    parser.add_argument("--compile", action="store_true",
                        help="add compile=True rows for leaky, jordan, lstm(peepholes), lstm(layer_norm)")
    parser.add_argument("--no-compile", action="store_true", help="no compile=True rows (the default)")
    parser.add_argument("--no-padded", action="store_true", help="no padded-batch rows")
    parser.add_argument("--min-seconds", type=float, default=0.3, help="timing window per config and round")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, all cores)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="'process': CPU time of this process, robust to a busy machine (use with --threads 1)")
    parser.add_argument("--esn-steps", type=int, default=None, help="ESN sequence length (default 5000)")
    parser.add_argument("--parallel-only", action="store_true",
                        help="only the min_gru/min_lstm rows (T=35 and T=1024, B=16, H=512, against nn.LSTM)")
    parser.add_argument("--parallel-steps", type=int, nargs="+", default=None,
                        help="sequence lengths of the min_gru/min_lstm rows (default 35 1024; 35 with --quick)")
    parser.add_argument("--device", default="cpu", help="device of the min_gru/min_lstm rows (cuda: vs cuDNN)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    global clock
    clock = CLOCKS[args.clock]
    hidden = args.hidden or ([200] if args.quick else [200, 650])
    rounds = args.rounds or (2 if args.quick else 5)
    compiled = args.compile and not (args.quick or args.no_compile)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
          f", cells: {', '.join(rk.list_cells())}; {rounds} interleaved rounds, medians, {args.clock} clock\n")
    parallel_steps = args.parallel_steps or ([35] if args.quick else list(PARALLEL["steps"]))
    parallel = {steps: bench_parallel(steps, rounds, args.min_seconds, args.device) for steps in parallel_steps}
    print(parallel_table(parallel, args.device), "\n", flush=True)
    if args.parallel_only:
        return
    for size in hidden:
        configs = bench_cells(size, rounds, compiled, args.min_seconds, padded=not args.no_padded)
        print(table(configs, size), "\n", flush=True)
    esn_steps = args.esn_steps or (1000 if args.quick else 5000)
    rate, _ = bench_esn(esn_steps, max(rounds, 3))
    print(f"esn: 1000 units, 10% density, one sequence of {esn_steps} steps, no_grad: {rate:,.0f} steps/s "
          f"(target >= 20,000)")


if __name__ == "__main__":
    main()
