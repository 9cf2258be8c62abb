"""Kneser-Ney baseline on PTB (or another corpus folder): perplexity, fit/score time and peak memory per configuration,
and the speed of the vectorised counting against plain-Python ``collections.Counter`` counting measured in the same run.

Usage::

    python benchmarks/ngram.py                                   # KN3 and KN5, sentence and stream mode, on PTB
    python benchmarks/ngram.py --data ../shared/data/wikitext-2 --orders 5
    python benchmarks/ngram.py --no-reference                    # skip the Counter reference

Each configuration runs in a fresh Python process, so its peak resident memory (``ru_maxrss``) is its own; the figure
includes the interpreter, numpy and what ``import recurrentkit`` pulls in (torch), and ``import MB`` (RSS after the
imports) shows that baseline. Wall seconds are followed by the process's CPU seconds, which a busy shared machine
disturbs less. The reference counts the n-grams of orders 1..N of the same sentences with ``Counter`` over tuples
(counting only: no discounts, no probabilities) and the ratio is reference CPU time / our whole fit's CPU time.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptb"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_one(data: Path, order: int, mode: str) -> dict:
    """Fit and score one configuration in this process; returns the measurements."""
    from recurrentkit.baselines.ngram import KneserNeyLM, find_split, read_corpus

    base = _rss_mb()
    t0 = time.perf_counter()
    train = read_corpus(find_split(data, "train"), mode)
    test = read_corpus(find_split(data, "test"), mode)
    t1, c1 = time.perf_counter(), time.process_time()
    lm = KneserNeyLM(order).fit(train)
    t2, c2 = time.perf_counter(), time.process_time()
    lp = lm.score(test)
    t3, c3 = time.perf_counter(), time.process_time()
    return {
        "order": order,
        "mode": mode,
        "ppl": math.exp(-lp.mean()),
        "tokens": int(lp.size),
        "read_s": t1 - t0,
        "fit_s": t2 - t1,
        "score_s": t3 - t2,
        "fit_cpu_s": c2 - c1,
        "score_cpu_s": c3 - c2,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "base_mb": base,
    }


def counter_reference(data: Path, order: int) -> float:
    """CPU seconds to count all n-grams of orders 1..order with ``collections.Counter`` (sentence mode)."""
    from recurrentkit.baselines.ngram import find_split, read_corpus

    sents = read_corpus(find_split(data, "train"), "sentence")
    t0 = time.process_time()
    counts = [collections.Counter() for _ in range(order)]
    for s in sents:
        padded = ("<s>", *s, "</s>")
        for k in range(1, order + 1):
            counts[k - 1].update(padded[i : i + k] for i in range(len(padded) - k + 1))
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--orders", type=int, nargs="+", default=[3, 5])
    ap.add_argument("--modes", nargs="+", default=["sentence", "stream"], choices=["sentence", "stream"])
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--one", nargs=2, metavar=("ORDER", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.data, int(args.one[0]), args.one[1])))
        return
    if not args.data.is_dir():
        raise FileNotFoundError(f"corpus folder not found: {args.data}")
    print(f"# {args.data} | {platform.processor() or platform.machine()} | python {platform.python_version()}")
    print("| order | mode | test ppl | tokens | read s | fit s (CPU s) | score s (CPU s) | peak MB | import MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    fits = {}
    for order in args.orders:
        for mode in args.modes:
            cmd = [sys.executable, __file__, "--data", str(args.data), "--one", str(order), mode]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            r = json.loads(out)
            fits[(order, mode)] = r["fit_cpu_s"]
            print(
                f"| {order} | {mode} | {r['ppl']:.2f} | {r['tokens']} | {r['read_s']:.2f} | "
                f"{r['fit_s']:.2f} ({r['fit_cpu_s']:.2f}) | {r['score_s']:.2f} ({r['score_cpu_s']:.2f}) | "
                f"{r['peak_mb']:.0f} | {r['base_mb']:.0f} |"
            )
    if not args.no_reference and "sentence" in args.modes:
        order = max(args.orders)
        ref = counter_reference(args.data, order)
        ours = fits[(order, "sentence")]
        print(
            f"\nreference: Counter counting of orders 1..{order} {ref:.2f} CPU s; our whole KN{order} fit "
            f"{ours:.2f} CPU s; ratio {ref / ours:.1f}x"
        )


if __name__ == "__main__":
    main()
