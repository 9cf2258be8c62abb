"""The compiled word2vec loop alone on WikiText-2: words/s of one epoch, no Lightning, no evaluation.

    python benchmarks/word2vec_loop.py --mode cbow --threads 2                  # the loop the Lightning task runs
    python benchmarks/word2vec_loop.py --mode cbow --threads 2 --row-width 128  # rows padded to 512 bytes
    python benchmarks/word2vec_loop.py --mode sg --threads 1 --repeats 5

It cuts the corpus into the data module's 100k-token chunks and calls
:func:`recurrentkit.embeddings.sgns_kernel.train_chunk` on each, with the data module's subsampling probabilities and
noise distribution and gensim's defaults (100 dimensions, window 5, 5 negatives, sample 1e-3). Each repeat trains
fresh vectors for one epoch; the script prints the best and the median words/s (in-vocabulary tokens per second).
``--row-width W`` stores each 100-float vector at the start of a ``W``-float row (the loop reads and writes only the
first 100): with ``W = 128`` every row starts on its own 64-byte cache line, so Hogwild threads that update
neighbouring words (the most frequent words sit next to each other in the frequency-sorted vocabulary) no longer
share the line where their rows meet. Needs Numba (``pip install "recurrentkit[fast]"``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("RK_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
DIM = 100


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", default=str(DATA / "wikitext-2" / "train.txt"))
    p.add_argument("--mode", choices=["sg", "cbow"], default="cbow")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--row-width", type=int, default=DIM, help=f"floats per stored row (>= {DIM})")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--chunk-size", type=int, default=100_000)
    args = p.parse_args(argv)
    if args.row_width < DIM:
        p.error(f"--row-width must be >= {DIM}")

    from recurrentkit.data.skipgram import NoiseSampler, Word2VecCorpus, keep_probabilities, read_sentences
    from recurrentkit.embeddings import sgns_kernel

    corpus = Word2VecCorpus(read_sentences(args.train), min_count=5)
    keep, cdf = keep_probabilities(corpus.counts, 1e-3), NoiseSampler(corpus.counts).cdf
    vocab, n = len(corpus.counts), len(corpus)
    bounds = list(range(0, n, args.chunk_size)) + [n]
    sgns_kernel.warm_up()
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(args.repeats):
        w_in = np.zeros((vocab, args.row_width), np.float32)
        w_in[:, :DIM] = (rng.random((vocab, DIM), dtype=np.float32) - 0.5) / DIM
        w_out = np.zeros_like(w_in)
        start = time.perf_counter()
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            sgns_kernel.train_chunk(w_in, w_out, corpus.ids[lo:hi], corpus.sentence_ids[lo:hi], keep, cdf,
                                    mode=args.mode, alpha_start=0.025 - 0.02 * lo / n,
                                    alpha_end=0.025 - 0.02 * hi / n, seed=int(rng.integers(2**62)),
                                    threads=args.threads, dim=DIM)
        rates.append(n / (time.perf_counter() - start))
    result = {"mode": args.mode, "threads": args.threads, "row_width": args.row_width, "words": n,
              "best_words_per_s": max(rates), "median_words_per_s": statistics.median(rates)}
    print(f"{args.mode}, {args.threads} thread(s), rows of {args.row_width} floats: best {max(rates):,.0f} words/s, "
          f"median {statistics.median(rates):,.0f} ({args.repeats} epochs of {n:,} tokens)", flush=True)
    return result


if __name__ == "__main__":
    main()
