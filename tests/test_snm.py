"""Tests for the sparse non-negative matrix LM (recurrentkit/baselines/snm.py) against a pure-Python computation."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from recurrentkit.baselines import KneserNeyLM, SparseNonNegativeLM
from recurrentkit.baselines.snm import parse_template

TEMPLATES = ("skip:1:1:0", "skip:2:1:0", "skip:1:1:1", "skip:1:2-4:0")


def toy_corpus(n_sent: int, seed: int, vocab: int = 9) -> list[list[str]]:
    """Sentences from a small Markov chain whose next word also depends on the word two back (so skip-grams
    carry information) over a ``vocab``-word vocabulary."""
    chain = np.random.default_rng(7)
    table = chain.dirichlet(np.ones(vocab) * 0.3, size=(vocab, vocab))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_sent):
        a, b = int(rng.integers(vocab)), int(rng.integers(vocab))
        sent = [f"w{a}", f"w{b}"]
        while rng.random() > 0.12 and len(sent) < 25:
            a, b = b, int(rng.choice(vocab, p=table[a, b]))
            sent.append(f"w{b}")
        out.append(sent)
    return out


@pytest.fixture(scope="module")
def train():
    return toy_corpus(80, seed=0)


@pytest.fixture(scope="module")
def heldout():
    return toy_corpus(30, seed=1)


@pytest.fixture(scope="module")
def test_sents():
    return toy_corpus(20, seed=2) + [["w1", "zzz-unseen", "w2"]]


def segments(lm: SparseNonNegativeLM, data) -> list[list[str]]:
    """The segments the model reads: ``<s> w.. </s>`` per sentence, or ``<s>`` + the whole stream."""
    if lm.mode == "stream":
        return [["<s>", *[w if w in lm.words else "<unk>" for w in data]]]
    eos = lm.words[lm.eos_id]
    return [["<s>", *[w if w in lm.words else "<unk>" for w in s], eos] for s in data if s]


def fired(lm: SparseNonNegativeLM, seg: list[str], i: int) -> set:
    """The features (template index, remote words, adjacent words) that fire when predicting ``seg[i]``."""
    feats = set()
    for j, t in enumerate(lm.templates):
        for s in range(t.skip_lo, t.skip_hi + 1) if t.remote else [0]:
            start = i - (t.adjacent + s + t.remote)
            if start >= 0:
                feats.add((j, tuple(seg[start : start + t.remote]), tuple(seg[i - t.adjacent : i])))
    return feats


def brute_force_probabilities(lm: SparseNonNegativeLM, train, data) -> list[float]:
    """p(w | h) of every predicted token of ``data``, by dictionaries and loops, from the model's fitted
    adjustment table only (counts, buckets and normalisers are recomputed here)."""
    counts: dict = collections.defaultdict(collections.Counter)
    left = collections.defaultdict(set)  # word -> the distinct words seen right before it
    for seg in segments(lm, train):
        for i in range(1, len(seg)):
            left[seg[i]].add(seg[i - 1])
            for f in fired(lm, seg, i):
                counts[f][seg[i]] += 1
    phi = lm.adjustment_table()
    nb = lm.n_buckets

    def bucket(x):
        return min(math.floor(lm.resolution * math.log2(x) + 1e-9), nb - 1)

    def adjusted(f, w):
        row = counts[f]
        cstar = sum(row.values())
        e = bucket(len(left[w])) if lm.target_diversity else 0
        return math.exp(phi[f[0], bucket(cstar), bucket(len(row)), bucket(row[w]), e]) * row[w] / cstar

    u = math.exp(lm.theta_uniform)
    probs = []
    for seg in segments(lm, data):
        for i in range(1, len(seg)):
            feats = [f for f in fired(lm, seg, i) if f in counts]
            num = u / lm.vocab_size + sum(adjusted(f, seg[i]) for f in feats if seg[i] in counts[f])
            den = u + sum(adjusted(f, w) for f in feats for w in counts[f])
            probs.append(num / den)
    return probs


@pytest.mark.parametrize("mode,target_diversity", [("sentence", True), ("stream", True), ("sentence", False)])
def test_vectorised_probabilities_equal_the_brute_force_loop(mode, target_diversity, train, heldout, test_sents):
    def shape(sents):
        return sents if mode == "sentence" else [w for s in sents for w in [*s, "<eos>"]]

    lm = SparseNonNegativeLM(order=3, skips=TEMPLATES, max_count=16, steps=15, lr=0.5,
                             target_diversity=target_diversity)
    lm.fit(shape(train), shape(heldout))
    assert any(np.abs(th).max() > 1e-3 for th in lm.theta.values())  # a non-trivial adjustment is compared
    expected = brute_force_probabilities(lm, shape(train), shape(test_sents))
    got = np.exp(lm.score(shape(test_sents)))
    assert got.size == len(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)


def test_distribution_sums_to_one_and_matches_score(train, heldout):
    lm = SparseNonNegativeLM(order=3, skips=TEMPLATES, steps=10).fit(train, heldout)
    sent = train[3][:6]
    lp = lm.score([sent])
    for i in range(len(sent) + 1):
        p = lm.distribution(["<s>", *sent[:i]])
        assert p.shape == (lm.vocab_size + 1,)
        assert p[lm.bos_id] == 0.0 and (p[: lm.vocab_size] > 0).all()
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
        word = sent[i] if i < len(sent) else lm.words[lm.eos_id]
        assert math.log(p[lm.words.index(word)]) == pytest.approx(lp[i], abs=1e-12)
    assert lm.log_prob(["<s>", *sent[:2]], sent[2]) == pytest.approx(lp[2], abs=1e-12)


def test_adjustment_training_lowers_heldout_loss(train, heldout, test_sents):
    lm = SparseNonNegativeLM(order=3, skips=TEMPLATES, steps=60).fit(train, heldout)
    untrained = SparseNonNegativeLM(order=3, skips=TEMPLATES, steps=0).fit(train, heldout)
    assert lm.heldout_loss_[0] == pytest.approx(untrained.heldout_loss_[0])
    assert lm.heldout_loss_[-1] < lm.heldout_loss_[0] - 0.05
    assert math.log(lm.perplexity(heldout)) == pytest.approx(lm.heldout_loss_[-1], abs=1e-9)
    assert lm.perplexity(heldout) < untrained.perplexity(heldout)
    assert lm.perplexity(test_sents) < untrained.perplexity(test_sents)  # and it generalises


def test_tail_of_training_as_heldout(train):
    lm = SparseNonNegativeLM(order=3, skips=TEMPLATES, steps=20, heldout_fraction=0.25).fit(train)
    assert lm.heldout_loss_[-1] < lm.heldout_loss_[0]
    full = SparseNonNegativeLM(order=3, skips=TEMPLATES, steps=0).fit(train, train[:5])
    assert lm.links_ == full.links_  # the final counts cover all of the training text


def test_ids_and_kneser_ney_score_the_same_events(train, test_sents):
    kn = KneserNeyLM(order=3, discounts=[(0.5, 1.0, 1.5)] * 3).fit(train)
    snm = SparseNonNegativeLM(order=3, skips=(), steps=5).fit(train, train[-10:])
    assert snm.score(test_sents).shape == kn.score(test_sents).shape
    assert snm.vocab_size == kn.vocab_size
    words = sorted({w for s in train for w in s})
    ids = [[words.index(w) for w in s] for s in train]
    by_id = SparseNonNegativeLM(order=3, skips=(), steps=5, vocab=words).fit(ids, ids[-10:])
    by_word = SparseNonNegativeLM(order=3, skips=(), steps=5, vocab=words).fit(train, train[-10:])
    np.testing.assert_allclose(by_id.score(ids[:5]), by_word.score(train[:5]), rtol=1e-12)


def test_bad_input_is_refused(train):
    with pytest.raises(ValueError, match="bad feature template"):
        parse_template("skipgram:1:2")
    with pytest.raises(ValueError, match="remote >= 1"):
        parse_template("skip:0:2:0")
    with pytest.raises(ValueError, match="duplicate"):
        SparseNonNegativeLM(order=3, skips=("ngram:1",))
    with pytest.raises(ValueError, match="heldout_fraction"):
        SparseNonNegativeLM(heldout_fraction=1.0)
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        SparseNonNegativeLM(l2=-1.0)
    with pytest.raises(RuntimeError, match="SparseNonNegativeLM is not fitted"):
        SparseNonNegativeLM().score(train)
    lm = SparseNonNegativeLM(order=2, skips=(), steps=1).fit(train, train[:3])
    with pytest.raises(ValueError, match="sentence mode"):
        lm.score([w for s in train for w in s])
    assert parse_template("skip:2:3-5:1").name == "skip:2:3-5:1" and parse_template("ngram:4").span == 4


def test_command_line(tmp_path, capsys, train, heldout, test_sents):
    from recurrentkit.cli.ngram import ngram_main

    for split, sents in (("train", train), ("valid", heldout), ("test", test_sents)):
        (tmp_path / f"ptb.{split}.txt").write_text("".join(" ".join(s) + "\n" for s in sents))
    assert ngram_main(["--data", str(tmp_path), "--model", "snm", "--order", "3", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "SNM, n-grams to order 3 + 9 skip-gram templates" in out and "validation split" in out
    ppl = float(out.split("perplexity ")[1].split()[0])
    lm = SparseNonNegativeLM(order=3, steps=5).fit(train, heldout)
    assert ppl == pytest.approx(lm.perplexity(test_sents), abs=1e-3)
    assert ngram_main(["--data", str(tmp_path), "--model", "snm", "--order", "2", "--skips", "none",
                       "--heldout", "tail", "--mode", "stream", "--steps", "2"]) == 0
    assert "+ 0 skip-gram templates (stream mode)" in capsys.readouterr().out
