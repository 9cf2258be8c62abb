"""Echo-state network benchmark: reservoir steps/s, ridge fit time and RMSE, against reservoirpy in the same run.

    python benchmarks/reservoir.py                 # 1000 units, 10 % density, 100k steps, fit on 80k states
    python benchmarks/reservoir.py --steps 20000 --train 16000 --no-reservoirpy

Task: one-step prediction of Mackey-Glass (``recurrentkit.data.timeseries.mackey_glass``, bit-identical to
reservoirpy's). Both libraries get *the same* reservoir (our seeded W, W_in, no bias; W handed to reservoirpy as the
scipy CSR matrix its own initialiser would make), so the RMSE comparison isolates the numerics. recurrentkit runs
the reservoir in float32 (NumPy/OpenBLAS loop) and keeps the ridge statistics in float64; reservoirpy runs float64.
Each timing is the best of ``--repeats`` runs; the load average is printed, because the 2-core machine is shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from recurrentkit.cells.esn import ESNCell
from recurrentkit.data.timeseries import mackey_glass
from recurrentkit.nn.readout import RidgeReadout


def best_of(repeats: int, fn):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - target) ** 2)))


def run_recurrentkit(cell: ESNCell, x: torch.Tensor, y: np.ndarray, train: int, washout: int, ridge: float,
                     repeats: int) -> dict:
    def states_fn():
        with torch.no_grad():
            return cell.forward_sequence(x.view(-1, 1, 1), cell.initial_state(1))[0][:, 0]

    run_s, states = best_of(repeats, states_fn)
    readout = RidgeReadout(cell.hidden_size, 1, ridge=ridge, washout=washout)
    target = torch.from_numpy(y).view(-1, 1)

    def fit_fn():
        readout.reset_statistics()
        readout.accumulate(states[:train].unsqueeze(1), target[:train].unsqueeze(1))
        readout.solve()

    fit_s, _ = best_of(repeats, fit_fn)
    with torch.no_grad():
        pred = readout(states[train:]).double().numpy()[:, 0]
    weight = np.concatenate([readout.weight.detach().double().numpy()[0], readout.bias.detach().double().numpy()])
    reference, condition = reference_solution(states[washout:train].double().numpy(), y[washout:train], ridge)
    test_design = np.concatenate([states[train:].double().numpy(), np.ones((len(x) - train, 1))], axis=1)
    return {"steps_per_s": len(x) / run_s, "run_s": run_s, "fit_s": fit_s, "rmse": rmse(pred, y[train:]),
            "weight_diff": float(np.linalg.norm(weight - reference) / np.linalg.norm(reference)),
            "prediction_diff": float(np.linalg.norm(test_design @ (weight - reference))
                                     / np.linalg.norm(test_design @ reference)),
            "condition": condition}


def reference_solution(states: np.ndarray, targets: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """The ridge solution ``[w; b]`` from the textbook float64 normal equations on the whole (centred) design in
    one product, the unregularised bias recovered from the means, and the condition number of that system: the
    weights of any float64 solver are determined only to about ``condition x 1.1e-16`` relative."""
    mean_x, mean_y = states.mean(0), targets.mean()
    centred = states - mean_x
    system = centred.T @ centred + ridge * np.eye(states.shape[1])
    w = np.linalg.solve(system, centred.T @ (targets - mean_y))
    return np.concatenate([w, [mean_y - mean_x @ w]]), float(np.linalg.cond(system))


def run_reservoirpy(cell: ESNCell, x: np.ndarray, y: np.ndarray, train: int, washout: int, ridge: float,
                    repeats: int) -> dict:
    import reservoirpy
    from reservoirpy.nodes import Reservoir, Ridge
    from scipy import sparse

    w = sparse.csr_matrix(cell.weight_hh.double().numpy())
    w_in = cell.weight_ih.double().numpy()

    def states_fn():
        reservoir = Reservoir(W=w, Win=w_in, bias=np.zeros(cell.hidden_size), lr=cell.leak_rate)
        return reservoir.run(x.reshape(-1, 1))

    run_s, states = best_of(repeats, states_fn)

    def fit_fn():
        readout = Ridge(ridge=ridge)
        readout.fit(states[washout:train], y[washout:train].reshape(-1, 1))
        return readout

    fit_s, readout = best_of(repeats, fit_fn)
    pred = readout.run(states[train:])[:, 0]
    return {"steps_per_s": len(x) / run_s, "run_s": run_s, "fit_s": fit_s, "rmse": rmse(pred, y[train:]),
            "version": reservoirpy.__version__}


def batched_throughput(cell: ESNCell, batch: int, steps: int, repeats: int) -> float:
    x = torch.randn(steps, batch, 1)

    def fn():
        with torch.no_grad():
            cell.forward_sequence(x, cell.initial_state(batch))

    seconds, _ = best_of(repeats, fn)
    return batch * steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--density", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--train", type=int, default=80_000)
    parser.add_argument("--washout", type=int, default=100)
    parser.add_argument("--ridge", type=float, default=1e-6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and the ESN's OpenBLAS loop (default: all cores)")
    parser.add_argument("--no-reservoirpy", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    series = mackey_glass(args.steps + 1)[:, 0].numpy()
    x64, y = series[:-1].copy(), series[1:].copy()
    x = torch.from_numpy(x64).float()
    cell = ESNCell(1, args.units, spectral_radius=1.25, leak_rate=0.3, density=args.density, input_density=0.1,
                   bias_scaling=0.0, seed=0)
    print(f"# ESN {args.units} units, density {args.density}, {args.steps} steps of 1-D input, ridge fit on "
          f"{args.train} states; torch {torch.__version__}, numpy {np.__version__}, {platform.processor() or 'cpu'}, "
          f"{os.cpu_count()} cores, {torch.get_num_threads()} threads, load average before {os.getloadavg()[0]:.1f}")
    ours = run_recurrentkit(cell, x, y, args.train, args.washout, args.ridge, args.repeats)
    script_cell = ESNCell(1, args.units, spectral_radius=1.25, leak_rate=0.3, density=args.density,
                          bias_scaling=0.0, seed=0, backend="script")
    short = min(args.steps, 10_000)
    script_s, _ = best_of(args.repeats, lambda: _states(script_cell, x[:short]))
    batched = batched_throughput(cell, 32, 2000, args.repeats)
    rows = [("recurrentkit (NumPy/OpenBLAS loop, float32)", ours)]
    rows.append(("recurrentkit (TorchScript loop, first 10k steps)",
                 {"steps_per_s": short / script_s, "fit_s": float("nan"), "rmse": float("nan")}))
    rpy = None
    if not args.no_reservoirpy:
        try:
            rpy = run_reservoirpy(cell, x64, y, args.train, args.washout, args.ridge, args.repeats)
            rows.append((f"reservoirpy {rpy['version']} (float64)", rpy))
        except ImportError:
            print("# reservoirpy is not installed: pip install reservoirpy (benchmark only)")
    print()
    print("| implementation | steps/s (1 sequence) | fit (s) | test RMSE |")
    print("|---|---:|---:|---:|")
    for name, r in rows:
        fit = "" if np.isnan(r["fit_s"]) else f"{r['fit_s']:.2f}"
        err = "" if np.isnan(r["rmse"]) else f"{r['rmse']:.3e}"
        print(f"| {name} | {r['steps_per_s']:,.0f} | {fit} | {err} |")
    print(f"| recurrentkit batched (32 sequences x 2000 steps) | {batched:,.0f} sequence-steps/s | | |")
    if rpy is not None:
        print()
        print(f"speed ratio recurrentkit / reservoirpy: {ours['steps_per_s'] / rpy['steps_per_s']:.2f}x (goal >= 2x)")
        print(f"fit time: recurrentkit {ours['fit_s']:.2f} s (goal <= 1.0 s), reservoirpy {rpy['fit_s']:.2f} s")
        print(f"RMSE relative difference: {abs(ours['rmse'] - rpy['rmse']) / rpy['rmse'] * 100:.2f} % (goal <= 1 %)")
    print(f"readout vs the one-shot float64 normal equations on the same states (condition number "
          f"{ours['condition']:.1e}): test predictions {ours['prediction_diff']:.1e} relative (goal <= 1e-6), "
          f"weights {ours['weight_diff']:.1e}")
    print(f"# load average after {os.getloadavg()[0]:.1f}")


def _states(cell: ESNCell, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return cell.forward_sequence(x.view(-1, 1, 1), cell.initial_state(1))[0]


if __name__ == "__main__":
    main()
