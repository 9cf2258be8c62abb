"""The compiled word2vec loop (recurrentkit.embeddings.sgns_kernel): against a plain-Python word2vec.c loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recurrentkit.data.skipgram import Word2VecCorpus, Word2VecDataModule, Word2VecDataset
from recurrentkit.embeddings import Word2VecTask, sgns_kernel
from recurrentkit.embeddings.sgns_kernel import lcg_next, train_chunk, uniform

pytestmark = pytest.mark.skipif(not sgns_kernel.available(), reason="Numba is not installed (recurrentkit[fast])")


EXP_TABLE = np.array([np.exp(x) / (np.exp(x) + 1) for x in (np.arange(1000) / 1000 * 2 - 1) * 6], np.float32)


def _alias_table(cdf):
    from recurrentkit.embeddings._sgns_numba import alias_table

    return alias_table(np.asarray(cdf, np.float64))


def test_alias_table_reproduces_the_distribution_exactly():
    rng = np.random.default_rng(0)
    p = rng.random(500) ** 4
    p[7] = 0.0  # a word the noise never draws
    p /= p.sum()
    prob, alias = _alias_table(np.cumsum(p))
    n = len(p)
    implied = prob / n  # bucket i gives i with probability prob[i] ...
    np.add.at(implied, alias, (1.0 - prob) / n)  # ... and alias[i] otherwise
    np.testing.assert_allclose(implied, p, atol=1e-12)
    assert implied[7] < 1e-12


def _reference(w_in, w_out, ids, sentences, keep, cdf, cbow, window, negative, alpha_start, alpha_end, seed,
               loss_every=1):
    """word2vec.c's loop in plain Python, drawing the same random numbers as the kernel (one thread); the loss of
    every ``loss_every``-th centre's examples, scaled to all examples."""
    prob, alias = _alias_table(cdf)
    prob = prob.astype(np.float32)  # the kernel keeps the table in 32 bits
    size = len(prob)
    state = (seed * 1000003 + 1) % 2**64
    kept = []
    for w, s in zip(ids, sentences):
        state = lcg_next(state)
        if uniform(state) < keep[w]:
            kept.append((int(w), int(s)))
    m, n = len(kept), len(ids)
    total_loss, examples, scored = 0.0, 0, 0

    def targets(v, e, target, state, alpha):
        loss = 0.0
        for k in range(negative + 1):
            if k == 0:
                t, label = target, 1.0
            else:
                state = lcg_next(state)
                x = uniform(state) * size
                i = min(int(x), size - 1)
                t, label = (i if x - i < prob[i] else int(alias[i])), 0.0
                if t == target:
                    continue
            f = float(np.dot(v, w_out[t]))
            s = 1.0 if f >= 6 else 0.0 if f <= -6 else float(EXP_TABLE[int((f + 6) * (1000 / 12))])  # word2vec.c
            x = f if label else -f
            loss += np.log1p(np.exp(-x))  # -log sigma(+-f), exact
            g = np.float32(alpha * (label - s))
            e += g * w_out[t]
            w_out[t] += g * v
        return loss, state

    for c in range(m):
        alpha = alpha_start + (alpha_end - alpha_start) * (n * (c + 1) / m) / n
        state = lcg_next(state)
        b = 1 + min(int(uniform(state) * window), window - 1)
        context = [j for j in range(max(0, c - b), min(m, c + b + 1)) if j != c and kept[j][1] == kept[c][1]]
        if cbow:
            if not context:
                continue
            v = np.mean([w_in[kept[j][0]] for j in context], axis=0).astype(np.float32)
            e = np.zeros_like(v)
            loss, state = targets(v, e, kept[c][0], state, alpha)
            examples += 1
            if c % loss_every == 0:
                total_loss, scored = total_loss + loss, scored + 1
            for j in context:
                w_in[kept[j][0]] += e
        else:
            for j in context:
                i = kept[j][0]
                e = np.zeros(w_in.shape[1], np.float32)
                loss, state = targets(w_in[i].copy(), e, kept[c][0], state, alpha)
                examples += 1
                if c % loss_every == 0:
                    total_loss, scored = total_loss + loss, scored + 1
                w_in[i] += e
    return total_loss * examples / scored, examples


@pytest.mark.parametrize("loss_every", [1, 16])
@pytest.mark.parametrize("mode", ["sg", "cbow"])
def test_one_thread_equals_the_plain_python_loop(mode, loss_every):
    rng = np.random.default_rng(1)
    vocab, dim = 40, 8
    ids = rng.integers(0, vocab, 300)
    sentences = np.repeat(np.arange(30), 10)
    keep = rng.random(vocab) * 0.5 + 0.5
    p = rng.random(vocab)
    cdf = np.cumsum(p / p.sum())
    w_in = rng.random((vocab, dim), dtype=np.float32) - 0.5
    w_out = rng.random((vocab, dim), dtype=np.float32) - 0.5
    got_in, got_out = w_in.copy(), w_out.copy()
    loss, examples = train_chunk(got_in, got_out, ids, sentences, keep, cdf, mode=mode, window=5, negative=5,
                                 alpha_start=0.1, alpha_end=0.05, seed=7, threads=1, loss_every=loss_every)
    ref_in, ref_out = w_in.copy(), w_out.copy()
    ref_loss, ref_examples = _reference(ref_in, ref_out, ids, sentences, keep, cdf, mode == "cbow", 5, 5, 0.1,
                                        0.05, 7, loss_every)
    assert examples == ref_examples > 100
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(got_in, ref_in, atol=1e-5)
    np.testing.assert_allclose(got_out, ref_out, atol=1e-5)
    assert not np.allclose(got_in, w_in)  # it trained


@pytest.mark.parametrize("mode", ["sg", "cbow"])
def test_the_loss_sample_estimates_the_loss_and_leaves_training_alone(mode):
    rng = np.random.default_rng(2)
    vocab, dim = 50, 8
    ids = rng.integers(0, vocab, 5000)
    sentences = np.arange(5000) // 20
    keep, cdf = np.ones(vocab), np.cumsum(np.full(vocab, 1.0 / vocab))
    w_in = rng.random((vocab, dim), dtype=np.float32) - 0.5
    results = {}
    for every in (1, 16):
        a, b = w_in.copy(), np.zeros_like(w_in)
        results[every] = train_chunk(a, b, ids, sentences, keep, cdf, mode=mode, seed=3, loss_every=every), a, b
    (exact, n1), a1, b1 = results[1]
    (sampled, n16), a16, b16 = results[16]
    assert n1 == n16 and np.array_equal(a1, a16) and np.array_equal(b1, b16)
    assert sampled != exact and sampled == pytest.approx(exact, rel=0.05)


@pytest.mark.parametrize("mode", ["sg", "cbow"])
def test_padded_rows_train_like_plain_rows_and_keep_their_padding(mode):
    rng = np.random.default_rng(4)
    vocab, dim = 30, 6
    ids, sentences = rng.integers(0, vocab, 400), np.arange(400) // 25
    keep, cdf = np.ones(vocab), np.cumsum(np.full(vocab, 1.0 / vocab))
    w_in = rng.random((vocab, dim), dtype=np.float32) - 0.5
    plain_in, plain_out = w_in.copy(), np.zeros_like(w_in)
    plain = train_chunk(plain_in, plain_out, ids, sentences, keep, cdf, mode=mode, seed=5)
    padded_in, padded_out = np.full((vocab, 16), 7.0, np.float32), np.full((vocab, 16), 7.0, np.float32)
    padded_in[:, :dim], padded_out[:, :dim] = w_in, 0.0
    padded = train_chunk(padded_in, padded_out, ids, sentences, keep, cdf, mode=mode, seed=5, dim=dim)
    assert padded == plain
    np.testing.assert_array_equal(padded_in[:, :dim], plain_in)
    np.testing.assert_array_equal(padded_out[:, :dim], plain_out)
    assert (padded_in[:, dim:] == 7.0).all() and (padded_out[:, dim:] == 7.0).all()


def test_windows_stay_inside_sentences_and_two_threads_train_the_whole_chunk():
    vocab, dim = 20, 4
    ids = np.arange(20).repeat(5) % vocab
    sentences = np.arange(100) // 2  # sentences of two tokens: each token has exactly one neighbour
    w = np.zeros((vocab, dim), np.float32)
    _, examples = train_chunk(w, w.copy(), ids, sentences, np.ones(vocab), np.linspace(0.05, 1, vocab),
                              window=5, threads=2)
    assert examples == 100  # one pair per token, none across a sentence end or lost at the threads' split


def test_train_chunk_rejects_bad_input():
    w = np.zeros((5, 3), np.float32)
    ids, keep, cdf = np.arange(5), np.ones(5), np.linspace(0.2, 1, 5)
    with pytest.raises(ValueError, match="float32"):
        train_chunk(w.astype(np.float64), w, ids, ids, keep, cdf)
    with pytest.raises(ValueError, match="one entry per word"):
        train_chunk(w, w.copy(), ids, ids, keep[:4], cdf)
    with pytest.raises(IndexError, match="outside"):
        train_chunk(w, w.copy(), ids + 1, ids, keep, cdf)
    with pytest.raises(ValueError, match="loss_every"):
        train_chunk(w, w.copy(), ids, ids, keep, cdf, loss_every=0)
    with pytest.raises(ValueError, match="dim"):
        train_chunk(w, w.copy(), ids, ids, keep, cdf, dim=4)
    with pytest.raises(ValueError, match="mode"):
        train_chunk(w, w.copy(), ids, ids, keep, cdf, mode="glove")


def test_compiled_data_yields_chunks_and_the_task_checks_its_backend():
    sentences = [[f"w{(i * 7 + j) % 30}" for j in range(10)] for i in range(50)]
    corpus = Word2VecCorpus(sentences, min_count=1)
    chunks = list(Word2VecDataset(corpus, batch_size=64, chunk_size=120, epochs=1, compiled=True))
    assert sum(len(c["tokens"]) for c in chunks) == len(corpus)
    assert all(c["progress"] < c["progress_end"] for c in chunks)
    task = Word2VecTask(len(corpus.vocab), vector_size=8, backend="torch")
    with pytest.raises(ValueError, match="backend='torch'"):
        task.training_step(chunks[0], 0)
    pairs = next(iter(Word2VecDataset(corpus, batch_size=64, epochs=1)))
    with pytest.raises(ValueError, match="compiled=True"):
        Word2VecTask(len(corpus.vocab), vector_size=8, backend="numba").training_step(pairs, 0)
    with pytest.raises(ValueError, match="negative_sharing"):
        Word2VecDataModule(sentences=sentences, min_count=1, negative_sharing=4, compiled=True)
    assert Word2VecDataModule(sentences=sentences, min_count=1).dataset_kwargs["compiled"]  # the default here
    task = Word2VecTask(len(corpus.vocab), vector_size=8)
    before = task.input_embeddings.weight.clone()
    loss = task.training_step(chunks[0], 0)
    assert torch.isfinite(loss) and not torch.equal(before, task.input_embeddings.weight)


def test_prefetch_compiles_to_a_prefetch_instruction_and_changes_nothing():
    import numba

    from recurrentkit.embeddings._prefetch import prefetch_for_write

    @numba.njit
    def touch(w, row):
        for column in range(0, w.shape[1], 16):
            prefetch_for_write(w, row, column)
        return w[row, 0]

    w = np.arange(40 * 100, dtype=np.float32).reshape(40, 100)
    before = w.copy()
    assert touch(w, 39) == before[39, 0]
    np.testing.assert_array_equal(w, before)
    assembly = touch.inspect_asm(touch.signatures[0])
    assert "prefetch" in assembly or "prfm" in assembly  # x86 prefetchw (write intent), ARM prfm
    with pytest.raises(numba.TypingError):
        numba.njit(lambda v: prefetch_for_write(v, 0, 0))(np.zeros(3, np.float32))  # 1-d arrays are refused
