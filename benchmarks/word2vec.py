"""word2vec on WikiText-2: recurrentkit vs gensim, same tokens, same hyperparameters, same run.

    python benchmarks/word2vec.py                       # skip-gram, gensim defaults, 5 epochs (a few minutes)
    python benchmarks/word2vec.py --mode cbow
    python benchmarks/word2vec.py --max-lines 3000 --epochs 1   # a quick smoke run
    python benchmarks/word2vec.py --backend torch               # the batched tensor update (negative_sharing 16)
    python benchmarks/word2vec.py --seeds 7 8 9 10 11 12 13 14  # both sides once per seed, then means

One seed cannot compare accuracies: between seeds each library's analogy score moves by about 0.6 points (12%
relative), more than the 5% being judged (gensim's seed 1, the default, scored 5.1-5.4% in every run on
2026-12-03, where its seeds 7-14 average 4.8%), so accuracy is compared as the mean over ``--seeds``.

Both train on the lines of ``wikitext-2/train.txt`` split on whitespace (no end-of-line token; windows stop at line
ends), with gensim's defaults: vector_size 100, window 5, min_count 5, negative 5, sample 1e-3, alpha 0.025 ->
min_alpha 1e-4, 5 epochs (``sg=1`` for skip-gram). gensim uses ``workers=2``. Both are scored by
``recurrentkit.embeddings.evaluate_analogies`` (gensim's rules, restrict_vocab 30000) and, as a cross-check,
gensim's own ``evaluate_word_analogies`` on gensim's vectors.

words/s = (in-vocabulary training tokens x epochs) / training wall time, for both (vocabulary building excluded;
gensim's own ``corpus_total_words`` would also count the words below min_count). With ``--backend numba`` (the
default) recurrentkit runs word2vec.c's loop compiled by Numba on 2 Hogwild threads, as gensim's 2 workers do; the
compiled code is loaded from Numba's cache before the clock starts.
gensim is needed only here: ``pip install gensim``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("RK_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", default=str(DATA / "wikitext-2" / "train.txt"))
    p.add_argument("--questions", default=str(DATA / "analogy" / "questions-words.txt"))
    p.add_argument("--mode", choices=["sg", "cbow"], default="sg")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--max-lines", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=4096)
    p.add_argument("--backend", choices=["numba", "torch"], default="numba",
                   help="numba: word2vec.c's loop compiled (needs recurrentkit[fast]); torch: batched tensor update")
    p.add_argument("--threads", type=int, default=None,
                   help="recurrentkit threads: Hogwild threads (numba, default 2 like gensim's workers) or torch "
                        "intra-op threads (default 1)")
    p.add_argument("--workers", type=int, default=2, help="gensim worker threads")
    p.add_argument("--num-workers", type=int, default=0,
                   help="recurrentkit DataLoader worker processes (pair generation beside training)")
    p.add_argument("--negative-sharing", type=int, default=None,
                   help="torch backend: pairs sharing one draw of noise words (default 16; 1: word2vec's own scheme)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="run once per seed (both sides use it) and print the means: accuracy needs several seeds")
    p.add_argument("--skip-gensim", action="store_true")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.seeds:
        return seed_summary(argv, args.seeds, args.json)
    numba_backend = args.backend == "numba"
    if args.threads is None:
        args.threads = 2 if numba_backend else 1
    if args.negative_sharing is None:
        args.negative_sharing = 1 if numba_backend else 16
    if numba_backend and args.negative_sharing != 1:
        p.error("--backend numba draws its own negatives per pair: --negative-sharing must be 1")

    import torch

    from recurrentkit.data.skipgram import Word2VecCorpus, Word2VecDataModule, read_sentences
    from recurrentkit.embeddings import Word2VecTask, WordVectors

    torch.set_num_threads(args.threads)
    sentences = read_sentences(args.train, max_lines=args.max_lines)
    n_tokens = sum(len(s) for s in sentences)
    print(f"corpus: {args.train}: {len(sentences)} non-empty lines, {n_tokens} tokens; mode={args.mode}, "
          f"epochs={args.epochs}", flush=True)
    results: dict = {"mode": args.mode, "epochs": args.epochs, "tokens": n_tokens, "lines": len(sentences)}

    # --- recurrentkit ---
    import lightning as L

    dm = Word2VecDataModule(sentences=sentences, min_count=5, mode=args.mode, window=5, sample=1e-3, negative=5,
                            batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                            num_workers=args.num_workers, negative_sharing=args.negative_sharing,
                            compiled=numba_backend)
    corpus: Word2VecCorpus = dm.corpus
    task = Word2VecTask(dm.vocab_size, vector_size=100, mode=args.mode, alpha=0.025, min_alpha=0.0001,
                        seed=args.seed, words=dm.words, num_threads=args.threads, backend=args.backend)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    compiled = numba_backend
    if compiled:
        from recurrentkit.embeddings import sgns_kernel

        sgns_kernel.warm_up()  # load the compiled loop from Numba's cache before the clock starts
    t0 = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    rk_seconds = time.perf_counter() - t0
    rk_words = len(corpus) * args.epochs
    rk_vectors = task.word_vectors()
    rk_eval = rk_vectors.evaluate_analogies(args.questions, restrict_vocab=30000)
    results["recurrentkit"] = {"seconds": rk_seconds, "words_per_sec": rk_words / rk_seconds,
                               "vocab": dm.vocab_size, "train_words": len(corpus), **rk_eval.as_dict(),
                               "threads": args.threads, "batch_size": args.batch_size,
                               "num_workers": args.num_workers, "negative_sharing": args.negative_sharing,
                               "compiled": compiled}
    print(f"recurrentkit: vocab {dm.vocab_size}, {len(corpus)} training tokens/epoch, {rk_seconds:.1f} s, "
          f"{rk_words / rk_seconds:,.0f} words/s; analogies: {rk_eval}", flush=True)

    # --- gensim ---
    if not args.skip_gensim:
        try:
            from gensim.models import Word2Vec
        except ImportError:
            print("gensim is not installed (pip install gensim); skipping the reference", file=sys.stderr)
        else:
            import gensim

            model = Word2Vec(vector_size=100, window=5, min_count=5, negative=5, sample=1e-3, alpha=0.025,
                             min_alpha=0.0001, sg=int(args.mode == "sg"), hs=0, workers=args.workers,
                             seed=args.seed, epochs=args.epochs)
            model.build_vocab(sentences)
            t0 = time.perf_counter()
            model.train(sentences, total_examples=model.corpus_count, epochs=args.epochs)
            gs_seconds = time.perf_counter() - t0
            # the same numerator as ours: in-vocabulary tokens (gensim's corpus_total_words also counts the words
            # below min_count, which it drops before training)
            gs_words = sum(model.wv.get_vecattr(w, "count") for w in model.wv.index_to_key) * args.epochs
            kv = model.wv
            gs_vectors = WordVectors(list(kv.index_to_key), kv.vectors)
            gs_eval = gs_vectors.evaluate_analogies(args.questions, restrict_vocab=30000)
            gs_native, _ = kv.evaluate_word_analogies(args.questions, restrict_vocab=30000)
            results["gensim"] = {"version": gensim.__version__, "seconds": gs_seconds,
                                 "words_per_sec": gs_words / gs_seconds, "vocab": len(kv), **gs_eval.as_dict(),
                                 "total_by_gensim_evaluator": gs_native, "workers": args.workers}
            print(f"gensim {gensim.__version__}: vocab {len(kv)}, {gs_seconds:.1f} s, "
                  f"{gs_words / gs_seconds:,.0f} words/s; analogies: {gs_eval} "
                  f"(gensim's own evaluator: total {100 * gs_native:.2f}%)", flush=True)
            rk, gs = results["recurrentkit"], results["gensim"]
            rel = (rk["total"] - gs["total"]) / gs["total"] if gs["total"] else float("nan")
            results["ratio"] = {"accuracy_relative_difference": rel,
                                "speed_ratio": rk["words_per_sec"] / gs["words_per_sec"]}
            print(f"ratio: analogy accuracy {100 * rk['total']:.2f}% vs {100 * gs['total']:.2f}% "
                  f"(relative difference {100 * rel:+.1f}%); speed {rk['words_per_sec'] / gs['words_per_sec']:.2f}x "
                  f"gensim", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


def seed_summary(argv: list[str] | None, seeds: list[int], json_path: str | None) -> dict:
    """Run :func:`main` once per seed and print each side's mean analogy accuracy and words/s."""
    import statistics

    argv = list(sys.argv[1:] if argv is None else argv)
    rest, i = [], 0
    while i < len(argv):  # every argument but --seeds and --json (and their values)
        if argv[i] in ("--seeds", "--json"):
            i += 1
            while i < len(argv) and not argv[i].startswith("--"):
                i += 1
            continue
        rest.append(argv[i])
        i += 1
    runs = [main(rest + ["--seed", str(seed)]) for seed in seeds]
    summary: dict = {"seeds": seeds, "runs": runs}
    for side in ("recurrentkit", "gensim"):
        done = [r[side] for r in runs if side in r]
        if done:
            acc, speed = [d["total"] for d in done], [d["words_per_sec"] for d in done]
            summary[side] = {"mean_total": statistics.mean(acc), "min_total": min(acc), "max_total": max(acc),
                             "mean_words_per_sec": statistics.mean(speed)}
            print(f"{side}: analogy mean {100 * statistics.mean(acc):.2f}% (min {100 * min(acc):.2f}%, max "
                  f"{100 * max(acc):.2f}%) over seeds {seeds}; {statistics.mean(speed):,.0f} words/s on average",
                  flush=True)
    if "recurrentkit" in summary and "gensim" in summary:
        rk, gs = summary["recurrentkit"], summary["gensim"]
        summary["accuracy_relative_difference"] = rk["mean_total"] / gs["mean_total"] - 1
        summary["speed_ratio"] = rk["mean_words_per_sec"] / gs["mean_words_per_sec"]
        print(f"mean over {len(seeds)} seeds: accuracy {100 * summary['accuracy_relative_difference']:+.1f}% "
              f"relative, speed {summary['speed_ratio']:.2f}x gensim", flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
