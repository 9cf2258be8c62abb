"""``recurrentkit ngram``: fit an interpolated modified Kneser-Ney LM (:mod:`recurrentkit.baselines.ngram`), or a
sparse non-negative matrix LM (:mod:`recurrentkit.baselines.snm`), on a text file and print test perplexity, fit
time and peak memory."""

from __future__ import annotations

import argparse
import math
import resource
import time
from pathlib import Path

from ..baselines.ngram import UNK, KneserNeyLM, find_split, read_corpus


def ngram_parser() -> argparse.ArgumentParser:
    """The arguments of ``recurrentkit ngram``."""
    ap = argparse.ArgumentParser(prog="recurrentkit ngram", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="folder with ptb.{train,valid,test}.txt or {train,valid,test}.txt")
    ap.add_argument("--train", type=Path, help="training text (one sentence per line)")
    ap.add_argument("--test", type=Path, action="append", help="evaluation text (repeatable)")
    ap.add_argument("--valid", action="store_true", help="with --data: also evaluate the validation split")
    ap.add_argument("--order", type=int, default=5)
    ap.add_argument(
        "--mode",
        choices=("sentence", "stream"),
        default="sentence",
        help="sentence: <s> w.. </s> per line (SRILM); stream: one stream with <eos> per line",
    )
    ap.add_argument("--unk", default=UNK, help="unknown word (out-of-vocabulary test words map to it)")
    ap.add_argument("--eos", default="<eos>", help="end-of-line token in stream mode")
    ap.add_argument("--model", choices=("kn", "snm"), default="kn",
                    help="kn: interpolated modified Kneser-Ney; snm: sparse non-negative matrix LM (baselines/snm.py)")
    ap.add_argument("--skips", default=None,
                    help="snm: comma-separated skip-gram templates (skip:R:S:A or skip:R:S1-S2:A), 'none' for "
                         "n-grams only (default: the built-in set, DEFAULT_SKIPS)")
    ap.add_argument("--heldout", choices=("valid", "tail"), default="valid",
                    help="snm: fit the adjustment function on the validation split (needs --data) or on the last "
                         "10%% of the training text")
    ap.add_argument("--steps", type=int, default=None, help="snm: AdaGrad steps of the adjustment function")
    return ap


def ngram_main(argv: list[str] | None = None) -> int:
    """``recurrentkit ngram``: fit a Kneser-Ney (or, with ``--model snm``, a sparse non-negative matrix) LM and print
    test perplexity, fit time and peak memory."""
    ap = ngram_parser()
    args = ap.parse_args(argv)
    if args.data is not None:
        if not args.data.is_dir():
            raise FileNotFoundError(f"--data folder not found: {args.data}")
        train = args.train or find_split(args.data, "train")
        tests = args.test or [find_split(args.data, "test")]
        if args.valid and not args.test:
            tests.insert(0, find_split(args.data, "valid"))
    elif args.train is not None and args.test:
        train, tests = args.train, args.test
    else:
        ap.error("give --data DIR, or --train FILE and --test FILE")
    t0 = time.perf_counter()
    if args.model == "snm":
        from ..baselines.snm import SparseNonNegativeLM

        if args.heldout == "valid" and args.data is None:
            ap.error("--heldout valid needs --data DIR (or use --heldout tail)")
        skips = None if args.skips is None else [s for s in args.skips.split(",") if s.strip() not in ("", "none")]
        kw = {} if args.steps is None else {"steps": args.steps}
        lm = SparseNonNegativeLM(args.order, skips, unk=args.unk, **kw)
        heldout = read_corpus(find_split(args.data, "valid"), args.mode, args.eos) if args.heldout == "valid" else None
        lm.fit(read_corpus(train, args.mode, args.eos), heldout)
        fit_s = time.perf_counter() - t0
        print(f"SNM, n-grams to order {args.order} + {len(lm.templates) - args.order} skip-gram templates "
              f"({args.mode} mode) trained on {train}: vocab {lm.vocab_size}, {sum(lm.features_)} features, "
              f"{sum(lm.links_)} matrix entries")
        print(f"adjustment fitted on {'the validation split' if args.heldout == 'valid' else 'the training tail'}: "
              f"held-out loss {lm.heldout_loss_[0]:.4f} -> {lm.heldout_loss_[-1]:.4f} nats")
    else:
        lm = KneserNeyLM(args.order, unk=args.unk).fit(read_corpus(train, args.mode, args.eos))
        fit_s = time.perf_counter() - t0
        print(
            f"KN{args.order} ({args.mode} mode) trained on {train}: vocab {lm.vocab_size}, "
            f"n-gram types per order {lm.counts_}"
        )
        print("discounts (D1, D2, D3+) per order:",
              ", ".join(f"({a:.4f}, {b:.4f}, {c:.4f})" for a, b, c in lm.discounts_))
    for path in tests:
        t1 = time.perf_counter()
        lp = lm.score(read_corpus(path, args.mode, args.eos))
        print(
            f"{path}: perplexity {math.exp(-lp.mean()):.3f} over {lp.size} predicted tokens "
            f"({time.perf_counter() - t1:.2f} s)"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fit {fit_s:.2f} s (reading included), total {time.perf_counter() - t0:.2f} s, peak memory {peak_mb:.0f} MB")
    return 0


__all__ = ["ngram_main", "ngram_parser"]
