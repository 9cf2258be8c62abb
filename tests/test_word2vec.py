"""word2vec: sampling pieces, the SGD update, analogies, the word2vec text format, embedding initialisation."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from recurrentkit.data.skipgram import (
    NoiseSampler,
    Word2VecCorpus,
    Word2VecDataModule,
    Word2VecDataset,
    cbow_windows,
    keep_probabilities,
    noise_distribution,
    skipgram_pairs,
    subsample_mask,
)
from recurrentkit.data.vocab import Vocab
from recurrentkit.embeddings import (
    Word2VecTask,
    WordVectors,
    embedding_from_vectors,
    evaluate_analogies,
    init_embedding,
    load_word2vec_format,
    save_word2vec_format,
    sgns_kernel,
    train_word2vec,
)

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "word2vec" / "wikitext2-skipgram.yaml"


@pytest.fixture(autouse=True)
def _one_thread():
    """The batched word2vec update is many small ops: one thread is much faster on a shared CPU."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


# -- sampling -------------------------------------------------------------------------------------------------
def test_keep_probabilities_follow_word2vec_formula():
    counts = np.array([100_000, 5_000, 300, 2])
    s = 1e-3
    t = s * counts.sum()
    expected = np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1.0)
    np.testing.assert_allclose(keep_probabilities(counts, s), expected)
    p = keep_probabilities(counts, s)
    assert p[0] < p[1] < 1.0 and p[-1] == 1.0  # frequent words dropped more, rare ones never
    assert np.all(keep_probabilities(counts, 0.0) == 1.0)
    with pytest.raises(ValueError, match="sample"):
        keep_probabilities(counts, -1.0)


def test_subsampling_rate_matches_keep_probability():
    keep = np.array([0.1, 0.5, 1.0])
    ids = np.repeat(np.arange(3), 40_000)
    mask = subsample_mask(ids, keep, np.random.default_rng(0))
    rates = [mask[ids == w].mean() for w in range(3)]
    np.testing.assert_allclose(rates, keep, atol=0.01)


def test_noise_probabilities_proportional_to_count_power():
    counts = np.array([1000, 100, 10, 1])
    p = noise_distribution(counts, 0.75)
    np.testing.assert_allclose(p, counts**0.75 / (counts**0.75).sum())
    draws = NoiseSampler(counts, 0.75).sample(200_000, np.random.default_rng(0))
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, p, atol=0.005)
    with pytest.raises(ValueError):
        noise_distribution(np.zeros(3))


def test_dynamic_window_offsets_are_triangular_and_stay_in_sentence():
    n, window = 20_000, 5
    ids = np.arange(n)
    sent = np.zeros(n, dtype=np.int64)
    centre, context = skipgram_pairs(ids, sent, window, np.random.default_rng(0))
    offsets = np.abs(context - centre)
    freq = np.bincount(offsets, minlength=window + 1)[1:] / len(offsets)
    expected = np.arange(window, 0, -1) / np.arange(window, 0, -1).sum()  # P(d) ∝ window - d + 1
    np.testing.assert_allclose(freq, expected, atol=0.01)
    # fixed window: every offset equally often; mean pairs per word = 2 * window (minus the edges)
    c2, x2 = skipgram_pairs(ids, sent, window, np.random.default_rng(0), shrink=False)
    assert len(c2) == 2 * sum(n - d for d in range(1, window + 1))
    # sentence boundaries are never crossed
    sent = np.repeat(np.arange(n // 10), 10)
    c3, x3 = skipgram_pairs(ids, sent, window, np.random.default_rng(1))
    assert np.all(sent[c3] == sent[x3]) and len(c3) > 0


def test_cbow_windows_match_skipgram_pairs():
    rng_ids = np.random.default_rng(3)
    ids = rng_ids.integers(0, 50, size=300)
    sent = np.repeat(np.arange(30), 10)
    centre, ctx = cbow_windows(ids, sent, 3, np.random.default_rng(7), shrink=False)
    assert ctx.shape == (300, 6)
    c, x = skipgram_pairs(ids, sent, 3, np.random.default_rng(7), shrink=False)
    assert (ctx >= 0).sum() == len(c)  # same number of (centre, context) links
    for row in (0, 5, 9, 150):  # first / middle / last word of a sentence
        got = sorted(ctx[row][ctx[row] >= 0].tolist())
        lo, hi = (row // 10) * 10, (row // 10) * 10 + 10
        want = sorted(ids[j] for j in range(max(lo, row - 3), min(hi, row + 4)) if j != row)
        assert got == want


# -- training ---------------------------------------------------------------------------------------------------
def _planted_corpus(n_ent: int = 6, reps: int = 150, seed: int = 0) -> list[list[str]]:
    """``country{i}`` and ``capital{i}`` share entity context ``e{i}a e{i}b``; each type has its own context words.

    So vec(capital_i) - vec(country_i) is the same for every i: the analogy structure is planted.
    """
    rng = random.Random(seed)
    sents = []
    for _ in range(reps):
        for i in range(n_ent):
            for t in ("country", "capital"):
                s = [f"e{i}a", f"e{i}b", f"{t}{i}", f"{t}x", f"{t}y"]
                rng.shuffle(s)
                sents.append(s)
    rng.shuffle(sents)
    return sents


def test_negative_sampling_loss_decreases():
    corpus = Word2VecCorpus(_planted_corpus(reps=40), min_count=1)
    ds = Word2VecDataset(corpus, window=4, sample=0, batch_size=256, epochs=1, seed=0)
    batches = list(ds)
    task = Word2VecTask(len(corpus.vocab), vector_size=16, seed=0)
    probe = batches[0]

    def probe_loss() -> float:
        saved = [task.input_embeddings.weight.clone(), task.output_embeddings.weight.clone()]
        loss = task.sgd_step(probe["centre"], probe["context"], probe["negatives"], alpha=0.0)
        assert torch.equal(saved[0], task.input_embeddings.weight)  # alpha 0: no update
        return float(loss)

    before = probe_loss()
    # outputs start at 0, so every target costs -log σ(0) = log 2; negatives equal to the target are skipped
    n_targets = 1 + (probe["negatives"] != probe["centre"][:, None]).sum(1).double().mean()
    assert before == pytest.approx(float(n_targets) * np.log(2), rel=1e-4)
    for _ in range(3):
        for b in batches:
            task.sgd_step(b["centre"], b["context"], b["negatives"], alpha=0.05)
    assert probe_loss() < 0.85 * before


def _random_task_and_batch(mode: str, vocab: int = 12, batch: int = 10, k: int = 3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    task = Word2VecTask(vocab, vector_size=6, mode=mode, cbow_mean=False, seed=seed)
    task.output_embeddings.weight.copy_(torch.randn(vocab, 6, generator=gen) * 0.3)  # word2vec starts them at 0
    centre = torch.randint(0, vocab, (batch,), generator=gen)
    if mode == "sg":
        context = torch.randint(0, vocab, (batch,), generator=gen)
    else:
        context = torch.randint(0, vocab, (batch, 4), generator=gen)
        context[::3, 2:] = -1  # padding
    negatives = torch.randint(0, vocab, (batch, k), generator=gen)
    negatives[0, 0] = centre[0]  # a negative equal to the target is skipped
    return task, centre, context, negatives


@pytest.mark.parametrize("mode", ["sg", "cbow"])
def test_manual_update_equals_autograd_sgd_step(mode):
    """The closed-form update is ``w -= alpha * grad`` of the summed loss, all pairs at the pre-update weights."""
    task, centre, context, negatives = _random_task_and_batch(mode)
    w_in = task.input_embeddings.weight.clone().requires_grad_()
    w_out = task.output_embeddings.weight.clone().requires_grad_()
    if mode == "sg":
        v = w_in[context]
    else:  # cbow_mean=False: the sum of the context vectors (word2vec gives each context the unscaled gradient)
        v = (w_in[context.clamp_min(0)] * (context >= 0)[..., None]).sum(1)
    f_pos = (w_out[centre] * v).sum(1)
    f_neg = (w_out[negatives] * v[:, None]).sum(-1)
    valid = negatives != centre[:, None]
    loss = -(nn.functional.logsigmoid(f_pos).sum() + (nn.functional.logsigmoid(-f_neg) * valid).sum())
    loss.backward()
    alpha = 0.1
    returned = task.sgd_step(centre, context, negatives, alpha)
    torch.testing.assert_close(task.input_embeddings.weight, w_in.detach() - alpha * w_in.grad)
    torch.testing.assert_close(task.output_embeddings.weight, w_out.detach() - alpha * w_out.grad)
    assert float(returned) == pytest.approx(float(loss.detach()) / len(centre), rel=1e-5)


@pytest.mark.parametrize("mode", ["sg", "cbow"])
def test_shared_negatives_step_equals_per_pair_step_with_repeated_negatives(mode):
    """Groups of G pairs sharing one row of negatives give exactly the update of each pair owning that row."""
    task, centre, context, _ = _random_task_and_batch(mode, batch=10)
    shared = torch.randint(0, 12, (3, 3), generator=torch.Generator().manual_seed(1))  # G = 4, last group short
    shared[0, 1] = centre[2]
    reference = Word2VecTask(12, vector_size=6, mode=mode, cbow_mean=False)
    reference.load_state_dict(task.state_dict())
    loss = task.sgd_step(centre, context, shared, alpha=0.1)
    ref_loss = reference.sgd_step(centre, context, shared.repeat_interleave(4, dim=0)[:10], alpha=0.1)
    torch.testing.assert_close(task.input_embeddings.weight, reference.input_embeddings.weight)
    torch.testing.assert_close(task.output_embeddings.weight, reference.output_embeddings.weight)
    assert float(loss) == pytest.approx(float(ref_loss), rel=1e-5)
    with pytest.raises(ValueError, match="neither one per pair"):
        task.sgd_step(centre, context, shared[:1].expand(6, 3), alpha=0.1)  # 6 rows: groups of 2 leave one empty


def test_dataset_shares_negatives_per_group_and_checks_the_group_size():
    corpus = Word2VecCorpus(_planted_corpus(reps=5), min_count=1)
    batches = list(Word2VecDataset(corpus, window=2, sample=0, batch_size=64, epochs=1, seed=0, negative_sharing=8))
    for b in batches:
        assert b["negatives"].shape == (-(-len(b["centre"]) // 8), 5)
    with pytest.raises(ValueError, match="negative_sharing"):
        Word2VecDataset(corpus, batch_size=64, negative_sharing=5)


@pytest.mark.parametrize("compiled", [False, pytest.param(True, marks=pytest.mark.skipif(
    not sgns_kernel.available(), reason="Numba is not installed (recurrentkit[fast])"))], ids=["torch", "numba"])
@pytest.mark.parametrize("mode", ["sg", "cbow"])
def test_planted_analogy_is_solved(mode, compiled):
    wv, stats = train_word2vec(sentences=_planted_corpus(), mode=mode, vector_size=20, window=4, min_count=1,
                               sample=0, epochs=5, batch_size=256, seed=1, compiled=compiled)
    assert stats["words"] == 6 * 2 * 150 * 5 * 5
    solved = sum(wv.analogy(f"country{i}", f"capital{i}", f"country{j}") == f"capital{j}"
                 for i in range(6) for j in range(6) if i != j)
    assert solved >= 27, f"{mode}, compiled={compiled}: only {solved}/30 planted analogies solved"
    assert wv.most_similar("capital0", topn=3)[0][0] != "capital0"


def test_untrained_vectors_do_not_solve_planted_analogies():
    corpus = Word2VecCorpus(_planted_corpus(reps=2), min_count=1)
    wv = Word2VecTask(len(corpus.vocab), vector_size=20, seed=1).word_vectors(corpus.vocab)
    solved = sum(wv.analogy(f"country{i}", f"capital{i}", f"country{j}") == f"capital{j}"
                 for i in range(6) for j in range(6) if i != j)
    assert solved < 10  # the test above is not passed by chance


def test_lr_decays_linearly_over_all_epochs():
    sents = [[f"w{(i * 7 + j) % 40}" for j in range(12)] for i in range(300)]

    class Recording(Word2VecTask):
        def training_step(self, batch, batch_idx):
            self.alphas.append(self.current_alpha(batch["progress"]))
            return super().training_step(batch, batch_idx)

    import lightning as L

    dm = Word2VecDataModule(sentences=sents, min_count=1, batch_size=128, chunk_size=500, sample=0)
    task = Recording(dm.vocab_size, vector_size=8, alpha=0.025, min_alpha=0.0001)
    task.alphas = []
    L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(task, datamodule=dm)
    a = np.array(task.alphas)
    assert a[0] == pytest.approx(0.025)
    assert np.all(np.diff(a) <= 1e-12)  # never increases, also across the epoch boundary
    assert 0.0001 <= a[-1] < 0.025 * 0.1  # reaches the end of the schedule
    assert task.words_seen == pytest.approx(2 * len(dm.corpus))


def test_corpus_drops_rare_words_instead_of_mapping_to_unk():
    corpus = Word2VecCorpus([["a", "b", "a", "rare"], ["b", "a", "<unk>", "<unk>"]], min_count=2)
    assert corpus.words == ["a", "<unk>", "b"]  # frequency order, ties alphabetical, no specials
    assert corpus.ids.tolist() == [0, 2, 0, 2, 0, 1, 1]
    assert corpus.sentence_ids.tolist() == [0, 0, 0, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="min_count"):
        Word2VecCorpus([["a"]], min_count=2)


def test_datamodule_reads_text_file_with_hf_datasets(tmp_path):
    f = tmp_path / "train.txt"
    f.write_text("the cat sat\n\n the dog sat \nthe cat ran\n", encoding="utf-8")
    dm = Word2VecDataModule(train_file=str(f), min_count=2, sample=0, batch_size=4, compiled=False)
    assert dm.words == ["the", "cat", "sat"]
    assert len(dm.corpus) == 7 and dm.vocab_size == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["centre"].dtype == torch.int64 and batch["negatives"].shape == (len(batch["centre"]), 5)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        _ = Word2VecDataModule(train_file=str(tmp_path / "nope.txt")).vocab_size


# -- vectors, analogies, format -------------------------------------------------------------------------------
def test_word2vec_text_format_round_trip(tmp_path):
    gen = torch.Generator().manual_seed(0)
    wv = WordVectors(["the", "Paris", "été", "x1"], torch.randn(4, 7, generator=gen) * 3)
    path = tmp_path / "v.txt"
    save_word2vec_format(wv, path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "4 7"
    back = load_word2vec_format(path)
    assert back.words == wv.words
    assert torch.equal(back.vectors, wv.vectors)  # float32 values survive exactly
    assert load_word2vec_format(path, limit=2).words == ["the", "Paris"]
    with pytest.raises(ValueError, match="whitespace"):
        save_word2vec_format(WordVectors(["a b"], torch.zeros(1, 2)), tmp_path / "bad.txt")
    (tmp_path / "broken.txt").write_text("2 3\na 1 2 3\nb 1 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3"):
        load_word2vec_format(tmp_path / "broken.txt")
    with pytest.raises(FileNotFoundError):
        load_word2vec_format(tmp_path / "missing.txt")


def _toy_vectors() -> WordVectors:
    # king - man + woman = queen exactly; Paris - France + Italy = Rome exactly; "Queen" a rarer case variant
    words = ["man", "woman", "king", "queen", "France", "Paris", "Italy", "Rome", "Queen", "banana"]
    vecs = torch.tensor([
        [1, 0, 0, 0, 0.1], [0, 1, 0, 0, 0.1], [1, 0, 1, 0, 0.1], [0, 1, 1, 0, 0.1],
        [0, 0, 0, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 1, -1], [0, 0, 1, 1, -1],
        [0, 1, 1, 0, 0.12], [5, -5, 0, 0, 0],
    ], dtype=torch.float32)
    return WordVectors(words, vecs)


def test_most_similar_and_analogy():
    wv = _toy_vectors()
    assert wv.analogy("man", "king", "woman") == "queen"
    assert wv.analogy("France", "Paris", "Italy") == "Rome"
    top = wv.most_similar(positive=["king", "woman"], negative=["man"], topn=3)
    assert [w for w, _ in top][0] == "queen" and all(w not in ("king", "woman", "man") for w, _ in top)
    assert top[0][1] > top[1][1] and -1.0 <= top[-1][1] <= 1.0
    assert wv.most_similar("queen", topn=1)[0][0] == "Queen"
    assert wv.most_similar("queen", topn=1, restrict_vocab=8)[0][0] != "Queen"
    with pytest.raises(KeyError, match="zebra"):
        wv.most_similar("zebra")


def test_evaluate_analogies_counts(tmp_path):
    q = tmp_path / "q.txt"
    q.write_text(
        ": capital-common-countries\n"
        "France Paris Italy Rome\n"  # correct
        "france paris italy rome\n"  # correct (case-insensitive)
        "Italy Rome France Paris\n"  # correct
        "France Paris Italy banana\n"  # wrong
        "France Paris Spain Madrid\n"  # OOV: skipped
        ": gram-family\n"
        "man king woman queen\n"  # correct (Queen is ignored? no: it is not a question word; queen wins)
        "king man queen woman\n"  # correct
        "man woman king Queen\n"  # upper-cased, Queen == queen: correct
        "bad line\n",  # malformed: ignored
        encoding="utf-8",
    )
    r = evaluate_analogies(_toy_vectors(), q, restrict_vocab=30000)
    assert (r.semantic.correct, r.semantic.total) == (3, 4)
    assert (r.syntactic.correct, r.syntactic.total) == (3, 3)
    assert (r.total.correct, r.total.total) == (6, 7)
    assert r.oov == 1 and r.questions == 8
    assert [s.name for s in r.sections] == ["capital-common-countries", "gram-family"]
    # restrict_vocab=4 keeps only man, woman, king, queen: the capital questions become OOV
    r4 = evaluate_analogies(_toy_vectors(), q, restrict_vocab=4)
    assert r4.semantic.total == 0 and r4.oov == 5 and r4.syntactic.total == 3
    # case-sensitive: the lower-case copy of the capital question is OOV
    rc = evaluate_analogies(_toy_vectors(), q, case_insensitive=False)
    assert rc.oov == 2
    # dummy4unknown counts OOV questions as wrong
    rd = evaluate_analogies(_toy_vectors(), q, dummy4unknown=True)
    assert rd.total.total == 8 and rd.total.correct == 6
    with pytest.raises(ValueError, match="section header"):
        (tmp_path / "nohdr.txt").write_text("a b c d\n")
        evaluate_analogies(_toy_vectors(), tmp_path / "nohdr.txt")


def test_evaluate_analogies_agrees_with_gensim(tmp_path):
    gensim_models = pytest.importorskip("gensim.models", reason="gensim is an optional reference (pip install gensim)")
    gen = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(40)] + ["W3", "W5"]  # case variants ranked after their lower-case forms
    vecs = torch.randn(len(words), 4, generator=gen)
    rng = random.Random(0)
    lines = [": capital-x"] + [" ".join(rng.choice(words + ["zz"]) for _ in range(4)) for _ in range(150)]
    lines += [": gram-y"] + [" ".join(rng.choice(words[:12]) for _ in range(4)) for _ in range(150)]
    q = tmp_path / "q.txt"
    q.write_text("\n".join(lines) + "\n")
    kv = gensim_models.KeyedVectors(4)
    kv.add_vectors(words, vecs.numpy())
    for restrict in (30000, 25):
        score, sections = kv.evaluate_word_analogies(str(q), restrict_vocab=restrict)
        ours = evaluate_analogies(WordVectors(words, vecs), q, restrict_vocab=restrict)
        assert ours.total.correct == len(sections[-1]["correct"])
        assert ours.total.total == len(sections[-1]["correct"]) + len(sections[-1]["incorrect"])
        assert ours.total.accuracy == pytest.approx(score)


# -- embedding initialisation ---------------------------------------------------------------------------------
def test_init_embedding_from_vectors_reports_oov(tmp_path):
    wv = _toy_vectors()
    vocab = Vocab(["<unk>", "king", "Queen", "Rome", "zebra", "MAN"], unk_token="<unk>")
    emb = nn.Embedding(len(vocab), 5)
    before = emb.weight.detach().clone()
    oov = init_embedding(emb, vocab, wv)
    assert oov == ["<unk>", "zebra"]
    assert torch.equal(emb.weight[1], wv["king"]) and torch.equal(emb.weight[2], wv["Queen"])
    assert torch.equal(emb.weight[5], wv["man"])  # lower-case fallback
    assert torch.equal(emb.weight[4], before[4])  # OOV rows untouched
    path = tmp_path / "v.txt"
    wv.save(path)
    emb2, oov2 = embedding_from_vectors(vocab, path, freeze=True, padding_idx=0)
    assert oov2 == oov and not emb2.weight.requires_grad
    assert torch.equal(emb2.weight[3], wv["Rome"]) and torch.all(emb2.weight[0] == 0)
    with pytest.raises(ValueError, match="embedding_dim"):
        init_embedding(nn.Embedding(6, 3), vocab, wv)


def test_recipe_instantiates_and_runs(shared_data, tmp_path):
    from recurrentkit.cli import main

    out = tmp_path / "vec.txt"
    main(["fit", "--config", str(RECIPE), "--data.init_args.train_file",
          str(shared_data / "wikitext-2" / "train.txt"), "--data.init_args.max_lines=200",
          "--data.init_args.min_count=2", "--trainer.max_epochs=1", "--trainer.enable_progress_bar=false",
          f"--trainer.default_root_dir={tmp_path}",  # LightningCLI writes config.yaml there
          f"--model.init_args.vectors_path={out}", "--model.init_args.analogy_path=null"])
    wv = load_word2vec_format(out)
    assert wv.vector_size == 100 and len(wv) > 100 and wv.words[0] == "the"
    assert (tmp_path / "config.yaml").is_file()


def test_input_vectors_start_in_gensims_range_unless_told():
    dim = 50
    default = Word2VecTask(2000, vector_size=dim).input_embeddings.weight
    assert default.abs().max() <= 1.0 / dim and default.abs().max() > 0.95 / dim  # U(-1/d, 1/d), gensim 4
    assert Word2VecTask(2000, vector_size=dim).output_embeddings.weight.abs().max() == 0
    narrow = Word2VecTask(2000, vector_size=dim, init_range=0.5 / dim).input_embeddings.weight  # word2vec.c's
    assert narrow.abs().max() <= 0.5 / dim and narrow.abs().max() > 0.45 / dim
    with pytest.raises(ValueError, match="init_range"):
        Word2VecTask(10, init_range=0.0)
