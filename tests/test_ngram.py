"""Tests for the interpolated modified Kneser-Ney baseline (recurrentkit/baselines/ngram.py)."""

from __future__ import annotations

import collections
import functools
import math
import pathlib

import numpy as np
import pytest

from recurrentkit.baselines import KneserNeyLM, modified_kn_discounts, read_corpus
from recurrentkit.cli.ngram import ngram_main

# ---------------------------------------------------------------------------------------------- corpora


def markov_corpus(n_sent: int, seed: int, vocab: int = 300, core: int = 40) -> list[list[str]]:
    """Sentences from a fixed sparse Markov chain over ``core`` words with Zipfian jumps to a ``vocab``-word
    vocabulary (the chain is the same for every seed; ``seed`` draws the text).

    Sentence starts are concentrated on a few words (w0 starts 60% of them), so the ``<s>`` context matters; the
    rare words give every order non-zero count-of-counts n1..n4.
    """
    chain = np.random.default_rng(1234)
    succ = [chain.choice(core, size=4, replace=False) for _ in range(core)]
    succ_p = chain.dirichlet(np.ones(4) * 0.7, size=core)
    zipf = 1.0 / np.arange(1, vocab + 1)
    zipf /= zipf.sum()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_sent):
        w = int(rng.choice(3, p=[0.6, 0.3, 0.1]))
        sent = [f"w{w}"]
        while rng.random() > 0.15 and len(sent) < 30:
            if rng.random() < 0.2:
                w = int(rng.choice(vocab, p=zipf))
            else:
                w = int(succ[w % core][rng.choice(4, p=succ_p[w % core])])
            sent.append(f"w{w}")
        out.append(sent)
    return out


@pytest.fixture(scope="module")
def train():
    return markov_corpus(600, seed=0)


@pytest.fixture(scope="module")
def heldout():
    return markov_corpus(200, seed=1)


def stream_of(sents):
    return [w for s in sents for w in [*s, "<eos>"]]


# ---------------------------------------------------------------------------------------------- formulas by hand


def test_discounts_follow_chen_goodman():
    # n = (4, 2, 1, 1): Y = 4/8; D1 = 1 - 2*.5*2/4; D2 = 2 - 3*.5*1/2; D3+ = 3 - 4*.5*1/1
    assert modified_kn_discounts(4, 2, 1, 1) == pytest.approx((0.5, 1.25, 1.0))
    with pytest.raises(ValueError, match="n1..n4"):
        modified_kn_discounts(4, 2, 0, 1)
    with pytest.raises(ValueError, match="negative"):
        modified_kn_discounts(30, 14, 25, 72)


TINY = [["a", "b"], ["a", "b", "a"], ["b"]]
# <s> a b </s> | <s> a b a </s> | <s> b </s>, order 3, V = {a, b, </s>, <unk>} (<unk> added with count 0)
# trigrams (raw):   <s>ab 2, ab</s> 1, aba 1, ba</s> 1, <s>b</s> 1
# bigrams (modified): <s>a 2 and <s>b 1 keep raw counts (start with <s>);
#                     continuation: ab 1 (<s>), b</s> 2 (a, <s>), ba 1 (a), a</s> 1 (b)
# unigrams (continuation): a 2 (<s>, b), b 2 (a, <s>), </s> 2 (b, a), <unk> 0
D = [(0.3, 0.6, 0.9), (0.4, 0.7, 1.0), (0.5, 0.8, 1.1)]


def tiny_expected() -> dict:
    d1, d2, d3 = D
    gamma1 = d1[1] * 3 / 6  # three unigrams with count 2, total 6
    p1 = {w: (2 - d1[1]) / 6 + gamma1 / 4 for w in ("a", "b", "</s>")}
    p1["<unk>"] = gamma1 / 4

    def p2(w, h):
        follow = {"<s>": {"a": 2, "b": 1}, "a": {"b": 1, "</s>": 1}, "b": {"</s>": 2, "a": 1}}[h]
        tot = sum(follow.values())
        gamma = sum(d2[min(c, 3) - 1] for c in follow.values()) / tot
        c = follow.get(w, 0)
        return (c - d2[min(c, 3) - 1]) / tot * (c > 0) + gamma * p1[w]

    def p3(w, h):
        follow = {
            ("<s>", "a"): {"b": 2},
            ("a", "b"): {"</s>": 1, "a": 1},
            ("<s>", "b"): {"</s>": 1},
            ("b", "a"): {"</s>": 1},
        }.get(h)
        if follow is None:
            return p2(w, h[1])
        tot = sum(follow.values())
        gamma = sum(d3[min(c, 3) - 1] for c in follow.values()) / tot
        c = follow.get(w, 0)
        return (c - d3[min(c, 3) - 1]) / tot * (c > 0) + gamma * p2(w, h[1])

    return {"p1": p1, "p2": p2, "p3": p3}


def test_tiny_corpus_by_hand():
    lm = KneserNeyLM(3, discounts=D).fit(TINY)
    ex = tiny_expected()
    assert lm.words == ["a", "b", "</s>", "<unk>"] and lm.vocab_size == 4
    # count-of-counts on the modified counts (n1, n2, n3, n4)
    assert lm.count_of_counts_ == [(0, 3, 0, 0), (4, 2, 0, 0), (4, 1, 0, 0)]
    for w in ("a", "b", "</s>", "<unk>"):
        assert math.exp(lm.log_prob([], w)) == pytest.approx(ex["p1"][w], abs=1e-12)
        assert math.exp(lm.log_prob(["<s>"], w)) == pytest.approx(ex["p2"](w, "<s>"), abs=1e-12)
        assert math.exp(lm.log_prob(["b"], w)) == pytest.approx(ex["p2"](w, "b"), abs=1e-12)
        for h in (("<s>", "a"), ("a", "b"), ("b", "a"), ("b", "b"), ("a", "a")):
            assert math.exp(lm.log_prob(list(h), w)) == pytest.approx(ex["p3"](w, h), abs=1e-12), (h, w)
    # the whole-sentence scorer: <s> a b a </s>
    want = [ex["p2"]("a", "<s>"), ex["p3"]("b", ("<s>", "a")), ex["p3"]("a", ("a", "b")), ex["p3"]("</s>", ("b", "a"))]
    np.testing.assert_allclose(np.exp(lm.score([["a", "b", "a"]])), want, rtol=1e-12)
    # context never crosses <s>: what precedes it is ignored
    assert lm.log_prob(["a", "b", "<s>", "a"], "b") == pytest.approx(lm.log_prob(["<s>", "a"], "b"))


def test_raw_count_of_counts_option_on_tiny_corpus():
    lm = KneserNeyLM(3, discounts=D, raw_count_of_counts=True).fit(TINY)
    # raw bigram counts <s>a 2, ab 2, b</s> 2, ba 1, a</s> 1, <s>b 1; the other orders are unchanged
    assert lm.count_of_counts_ == [(0, 3, 0, 0), (3, 3, 0, 0), (4, 1, 0, 0)]


def test_estimated_discounts_use_count_of_counts(train):
    lm = KneserNeyLM(3).fit(train)
    for coc, d in zip(lm.count_of_counts_, lm.discounts_):
        assert d == pytest.approx(modified_kn_discounts(*coc))
        assert 0 < d[0] < 1 and 0 < d[1] < 3 and 0 < d[2] < 3


def reference_kn(segments: list[list[str]], order: int, vocab_size: int):
    """Plain-dict interpolated modified KN straight from the formulas (``segments`` start with "<s>"): P(w, h)."""
    raw = [collections.Counter() for _ in range(order + 1)]  # raw[k][k-gram tuple]
    for seg in segments:
        for k in range(1, order + 1):
            for i in range(len(seg) - k + 1):
                raw[k][tuple(seg[i : i + k])] += 1
    counts = [None] + [collections.Counter() for _ in range(order)]
    counts[order] = raw[order]
    for k in range(1, order):
        for g in raw[k + 1]:
            counts[k][g[1:]] += 1  # continuation count: distinct left extensions
        for g, c in raw[k].items():
            if g[0] == "<s>":
                counts[k][g] = c  # no left context: raw count
    del counts[1][("<s>",)]  # <s> is never predicted
    disc, stats = [None], [None]
    for k in range(1, order + 1):
        coc = [sum(1 for c in counts[k].values() if c == r) for r in (1, 2, 3, 4)]
        d = modified_kn_discounts(*coc)
        disc.append(d)
        st = collections.defaultdict(lambda: [0.0, 0.0])  # context -> [total, discount mass]
        for g, c in counts[k].items():
            st[g[:-1]][0] += c
            st[g[:-1]][1] += d[min(c, 3) - 1]
        stats.append(st)

    def prob(w, h):
        if len(h) == 0:
            lower = 1.0 / vocab_size
        else:
            lower = prob(w, h[1:])
        k = len(h) + 1
        if h not in stats[k]:
            return lower
        tot, mass = stats[k][h]
        c = counts[k].get((*h, w), 0)
        return (c - disc[k][min(c, 3) - 1] if c else 0.0) / tot + mass / tot * lower

    return prob


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("mode", ["sentence", "stream"])
def test_matches_a_plain_dict_implementation(train, heldout, mode, order):
    if mode == "sentence":
        segs = [["<s>", *s, "</s>"] for s in train]
        test_segs = [["<s>", *s, "</s>"] for s in heldout[:40]]
        lm = KneserNeyLM(order).fit(train)
        got = lm.score(heldout[:40])
    else:
        segs = [["<s>", *stream_of(train)]]
        test_segs = [["<s>", *stream_of(heldout[:40])]]
        lm = KneserNeyLM(order).fit(stream_of(train))
        got = lm.score(stream_of(heldout[:40]))
    prob = reference_kn(segs, order, lm.vocab_size)
    want = []
    for seg in test_segs:
        seg = [w if w in lm.words else "<unk>" for w in seg[1:]]
        seg = ["<s>", *seg]
        for j in range(1, len(seg)):
            want.append(math.log(prob(seg[j], tuple(seg[max(0, j - order + 1) : j]))))
    np.testing.assert_allclose(got, want, rtol=1e-11)


# ---------------------------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    "mode, kwargs",
    [
        ("sentence", {}),
        ("stream", {}),
        ("sentence", {"min_counts": (1, 1, 2, 2)}),
        ("sentence", {"bos_raw_counts": False}),
        ("stream", {"raw_count_of_counts": True}),
    ],
)
def test_distribution_sums_to_one(train, mode, kwargs):
    data = train if mode == "sentence" else stream_of(train)
    lm = KneserNeyLM(4, **kwargs).fit(data)
    rng = np.random.default_rng(0)
    flat = stream_of(train)
    contexts = [[], ["<s>"], ["w0", "w999"], ["<unk>", "<unk>", "<unk>"]]
    for _ in range(25):  # seen contexts of every length, and random (mostly unseen) ones
        i, m = int(rng.integers(3, len(flat))), int(rng.integers(1, 4))
        contexts.append(flat[i - m : i] if mode == "stream" else [w for w in flat[i - m : i] if w != "<eos>"])
        contexts.append([f"w{j}" for j in rng.integers(0, 40, size=m)])
    for ctx in contexts:
        p = lm.distribution(ctx)
        assert p[lm.bos_id] == 0.0
        assert abs(p.sum() - 1.0) < 1e-9, ctx
        assert (p > 0).all() or (p[: lm.vocab_size] > 0).all()


def test_scorer_matches_log_prob(train, heldout):
    lm = KneserNeyLM(4).fit(train)
    sent = heldout[3]
    lp = lm.score([sent])
    padded = ["<s>", *sent, "</s>"]
    want = [lm.log_prob(padded[: i + 1], padded[i + 1]) for i in range(len(padded) - 1)]
    np.testing.assert_allclose(lp, want, rtol=1e-12)
    sm = KneserNeyLM(4).fit(stream_of(train))
    toks = stream_of(heldout[:3])
    want = [sm.log_prob(["<s>", *toks[:i]], toks[i]) for i in range(len(toks))]
    np.testing.assert_allclose(sm.score(toks), want, rtol=1e-12)


# ---------------------------------------------------------------------------------------------- the traps


def test_count_cutoffs_move_mass_to_the_backoff(train, heldout):
    full = KneserNeyLM(3).fit(train)
    cut = KneserNeyLM(3, min_counts=(1, 1, 2)).fit(train)
    assert cut.count_of_counts_ == full.count_of_counts_ and cut.discounts_ == full.discounts_
    # a trigram seen once: with the cut-off its probability is bow(h) * P(w | h'), no longer its own estimate
    flat = [w for s in train for w in ["<s>", *s, "</s>"]]
    tri = {}
    for i in range(len(flat) - 2):
        if "<s>" not in flat[i + 1 : i + 3]:
            tri[tuple(flat[i : i + 3])] = tri.get(tuple(flat[i : i + 3]), 0) + 1
    once = [g for g, c in tri.items() if c == 1][:20]
    assert once
    for g in once:
        h, w = list(g[:2]), g[2]
        p_full, p_cut = full.log_prob(h, w), cut.log_prob(h, w)
        assert p_cut < p_full  # the seen trigram lost its own (discounted) count
        other = [i for i, v in enumerate(cut.words) if tri.get((h[0], h[1], v), 0) < 2]
        ratio = (cut.distribution(h)[:-1] / cut.distribution(h[1:])[:-1])[other]  # [:-1] drops <s>
        assert np.allclose(ratio, ratio[0], rtol=1e-9)  # one back-off weight for all cut n-grams of h
        assert math.exp(p_cut - cut.log_prob(h[1:], w)) == pytest.approx(ratio[0])
    # the training text loses likelihood (held-out perplexity on real text: test_traps_hurt_on_real_text)
    assert cut.perplexity(train) > full.perplexity(train)


def test_bos_raw_counts(train, heldout):
    good = KneserNeyLM(3).fit(train)
    bad = KneserNeyLM(3, bos_raw_counts=False).fit(train)
    # without the rule, "<s> w" gets continuation count 0, so the <s> context falls back to the unigram distribution
    np.testing.assert_allclose(bad.distribution(["<s>"]), bad.distribution([]), rtol=1e-12)
    # with it, the frequent sentence start w0 (60% of the sentences) is predicted far better after <s>
    assert good.log_prob(["<s>"], "w0") > math.log(0.5) > bad.log_prob(["<s>"], "w0")
    assert bad.perplexity(heldout) > good.perplexity(heldout)


def test_raw_count_of_counts_changes_middle_orders_only(train, heldout):
    good = KneserNeyLM(4).fit(train)
    bad = KneserNeyLM(4, raw_count_of_counts=True).fit(train)
    assert bad.discounts_[0] == good.discounts_[0] and bad.discounts_[3] == good.discounts_[3]
    for k in (2, 3):  # orders 2 and 3 take the count-of-counts of raw counts: those of a model of that top order
        raw = KneserNeyLM(k).fit(train)
        assert bad.count_of_counts_[k - 1] == raw.count_of_counts_[k - 1] != good.count_of_counts_[k - 1]
        assert bad.discounts_[k - 1] == raw.discounts_[k - 1]
    assert bad.perplexity(heldout) > good.perplexity(heldout)


# ---------------------------------------------------------------------------------------------- modes and inputs


def test_ids_and_strings_agree(train, heldout):
    words = sorted({w for s in train for w in s}) + ["</s>", "<unk>"]
    stoi = {w: i for i, w in enumerate(words)}
    ids = [np.array([stoi[w] for w in s]) for s in train]
    test_ids = [[stoi.get(w, stoi["<unk>"]) for w in s] for s in heldout]
    by_str = KneserNeyLM(4).fit(train)
    by_ids = KneserNeyLM(4, vocab=len(words), eos=stoi["</s>"]).fit(ids)
    assert by_ids.perplexity(test_ids) == pytest.approx(by_str.perplexity(heldout), rel=1e-12)
    # a given word list (as the neural models' vocabulary) accepts both strings and its ids
    with_vocab = KneserNeyLM(4, vocab=words, eos="</s>").fit(ids)
    assert with_vocab.perplexity(heldout) == pytest.approx(by_str.perplexity(heldout), rel=1e-12)
    # stream mode on a flat id array
    flat_ids = np.array([stoi.get(w, 0) if w != "<eos>" else stoi["</s>"] for w in stream_of(train)])
    s1 = KneserNeyLM(3, vocab=len(words)).fit(flat_ids)
    s2 = KneserNeyLM(3, vocab=words).fit([words[i] for i in flat_ids])
    assert s1.perplexity(flat_ids[:500]) == pytest.approx(s2.perplexity([words[i] for i in flat_ids[:500]]))


def test_fits_on_the_project_tokenizer_and_vocab(shared_data):
    vocab_mod = pytest.importorskip("recurrentkit.data.vocab")
    tok_mod = pytest.importorskip("recurrentkit.data.tokenizers")
    torch = pytest.importorskip("torch")
    lines = (shared_data / "ptb" / "ptb.train.txt").read_text().splitlines(keepends=True)
    train_text, test_text = "".join(lines[:6000]), "".join(lines[6000:6500])
    tok = tok_mod.WordTokenizer()
    train_toks, test_toks = tok.tokenize(train_text), tok.tokenize(test_text)
    vocab = vocab_mod.Vocab.build([train_toks])  # ids by frequency, "<unk>" first
    ids = KneserNeyLM(3, vocab=vocab).fit(torch.tensor(vocab.encode(train_toks)))
    by_str = KneserNeyLM(3).fit(train_toks)
    assert ids.vocab_size == len(vocab) == by_str.vocab_size  # <unk> is in PTB: no extra id
    assert ids.perplexity(np.array(vocab.encode(test_toks))) == pytest.approx(by_str.perplexity(test_toks), rel=1e-12)


def test_stream_mode_crosses_lines(train):
    toks = stream_of(train)
    lm = KneserNeyLM(3).fit(toks)
    assert lm.mode == "stream" and lm.eos_id is None and "<eos>" in lm.words
    assert lm.score(toks[:100]).shape == (100,)  # every token is predicted, the first one from <s>
    # the line break is ordinary context: after <eos> the sentence starts are predicted well
    assert lm.log_prob(["<eos>"], "w0") > lm.log_prob([], "w0") + 1.0
    # and the first token of the stream is predicted after <s>, like a sentence start
    assert lm.score(["w0"])[0] == pytest.approx(lm.log_prob(["<s>"], "w0"))


def test_unknown_words_map_to_unk(train):
    lm = KneserNeyLM(3).fit(train)
    assert lm.log_prob(["w0"], "zebra") == lm.log_prob(["w0"], "<unk>")
    strict = KneserNeyLM(3, unk=None).fit(train)
    with pytest.raises(KeyError, match="zebra"):
        strict.perplexity([["w0", "zebra"]])


def test_bad_input_raises(train):
    with pytest.raises(ValueError, match="order"):
        KneserNeyLM(0)
    with pytest.raises(ValueError, match="empty"):
        KneserNeyLM(3).fit([])
    with pytest.raises(TypeError, match="single string"):
        KneserNeyLM(3).fit("a b c")
    with pytest.raises(RuntimeError, match="not fitted"):
        KneserNeyLM(3).perplexity(train)
    with pytest.raises(ValueError, match="min_counts"):
        KneserNeyLM(3, min_counts=(1, 2))
    with pytest.raises(ValueError, match="reserved"):
        KneserNeyLM(2).fit([["<s>", "a"]])
    with pytest.raises(ValueError, match="order 1: .*n1..n4"):
        KneserNeyLM(3).fit(TINY)
    lm = KneserNeyLM(3).fit(train)
    with pytest.raises(ValueError, match="never predicted"):
        lm.log_prob(["w0"], "<s>")
    with pytest.raises(ValueError, match="sentence mode"):
        lm.perplexity(stream_of(train))
    idlm = KneserNeyLM(2, vocab=300).fit(np.array([int(w[1:]) for w in stream_of(train) if w != "<eos>"]))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        idlm.perplexity(np.array([1, 2, 300]))
    with pytest.raises(TypeError, match="score ids"):
        idlm.perplexity(["a", "b"])


# ---------------------------------------------------------------------------------------------- command line


def test_cli_on_a_small_folder(tmp_path, train, heldout, capsys):
    (tmp_path / "train.txt").write_text("\n".join(" " + " ".join(s) + " " for s in train) + "\n")
    (tmp_path / "valid.txt").write_text("\n".join(" ".join(s) for s in heldout[:50]) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(" ".join(s) for s in heldout) + "\n")
    assert ngram_main(["--data", str(tmp_path), "--order", "3", "--valid"]) == 0
    out = capsys.readouterr().out
    want = KneserNeyLM(3).fit(train).perplexity(heldout)
    assert f"perplexity {want:.3f}" in out and "valid.txt" in out and "peak memory" in out
    assert (
        ngram_main(
            [
                "--train",
                str(tmp_path / "train.txt"),
                "--test",
                str(tmp_path / "test.txt"),
                "--order",
                "3",
                "--mode",
                "stream",
            ]
        )
        == 0
    )
    want = KneserNeyLM(3).fit(stream_of(train)).perplexity(stream_of(heldout))
    assert f"perplexity {want:.3f}" in capsys.readouterr().out
    only_train = tmp_path / "only_train"
    only_train.mkdir()
    (only_train / "train.txt").write_text("a b\n")
    with pytest.raises(FileNotFoundError, match="no test file"):
        ngram_main(["--data", str(only_train)])
    with pytest.raises(FileNotFoundError, match="corpus file"):
        read_corpus(tmp_path / "missing.txt", "sentence")


# ---------------------------------------------------------------------------------------------- real PTB


def _ptb(shared_data, mode):
    root = shared_data / "ptb"
    return read_corpus(root / "ptb.train.txt", mode), read_corpus(root / "ptb.test.txt", mode)


@functools.lru_cache(maxsize=1)
def _ptb_small(root: pathlib.Path):
    """KN4 on the first 10,000 PTB training sentences, scored on the first 1,000 validation sentences."""
    train_ = read_corpus(root / "ptb" / "ptb.train.txt", "sentence")[:10000]
    valid_ = read_corpus(root / "ptb" / "ptb.valid.txt", "sentence")[:1000]
    return train_, valid_, KneserNeyLM(4).fit(train_).perplexity(valid_)


@pytest.mark.parametrize(
    "trap", [{"min_counts": (1, 1, 2, 2)}, {"bos_raw_counts": False}, {"raw_count_of_counts": True}], ids=str
)
def test_traps_hurt_on_real_text(shared_data, trap):
    train_, valid_, good = _ptb_small(shared_data)
    bad = KneserNeyLM(4, **trap).fit(train_).perplexity(valid_)
    assert bad > good + 0.5  # measured: 225.6 -> 229.9 (cut-offs), 236.9 (<s> rule), 226.9 (raw count-of-counts)


@pytest.mark.parametrize("mode, target", [("sentence", 141.2), ("stream", 141.06)])
def test_ptb_kn5(shared_data, mode, target):
    train_, test_ = _ptb(shared_data, mode)
    lp = KneserNeyLM(5).fit(train_).score(test_)
    assert lp.size == 82430
    assert math.exp(-lp.mean()) == pytest.approx(target, abs=0.1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode, order, kwargs, target",
    [
        ("sentence", 3, {}, 148.3),
        ("stream", 3, {}, 148.38),
        ("sentence", 5, {"min_counts": (1, 1, 2, 2, 2)}, 147.9),  # SRILM's default -gt3min/-gt4min/-gt5min 2
        ("sentence", 5, {"bos_raw_counts": False}, 151.1),
        ("sentence", 5, {"raw_count_of_counts": True}, 141.7),
    ],
)
def test_ptb_kn3_and_traps(shared_data, mode, order, kwargs, target):
    train_, test_ = _ptb(shared_data, mode)
    assert KneserNeyLM(order, **kwargs).fit(train_).perplexity(test_) == pytest.approx(target, abs=0.1)
