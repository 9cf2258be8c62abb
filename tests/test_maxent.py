"""Hashed n-gram direct connections (RNNME's MaxEnt features)."""

import pytest
import torch
from torch.nn import functional as F

from recurrentkit.models.lm import RNNLanguageModel
from recurrentkit.nn.maxent import HashedNgramDirect


def test_equal_histories_share_a_bucket_and_short_histories_are_padded():
    direct = HashedNgramDirect(vocab_size=50, order=3, num_buckets=97)
    inputs = torch.tensor([[5, 7, 9, 5, 7, 9]])
    rows = direct.buckets(inputs)  # [1, 6, 2]: 1-word and 2-word histories
    assert rows.shape == (1, 6, 2)
    pad = direct.num_buckets
    assert rows[0, 0, 1] == pad and (rows[0, 1:, 1] != pad).all()  # no 2-word history at t=0
    assert rows[0, 0, 0] == rows[0, 3, 0]  # history "5"
    assert rows[0, 1, 1] == rows[0, 4, 1]  # history "5 7"
    assert rows[0, 2, 1] == rows[0, 5, 1]  # history "7 9"
    assert rows[0, 1, 1] != rows[0, 2, 1]


def test_scores_are_the_sum_of_the_history_rows():
    torch.manual_seed(0)
    direct = HashedNgramDirect(vocab_size=11, order=4, num_buckets=13)
    with torch.no_grad():
        direct.table.normal_()
    inputs = torch.randint(0, 11, (2, 5))
    rows = direct.buckets(inputs)
    expected = torch.zeros(2, 5, 11)
    for b in range(2):
        for t in range(5):
            for n in range(3):
                if rows[b, t, n] != direct.num_buckets:
                    expected[b, t] += direct.table[rows[b, t, n]]
    assert torch.allclose(direct(inputs), expected, atol=1e-6)


def test_padding_row_gets_no_gradient():
    direct = HashedNgramDirect(vocab_size=7, order=3, num_buckets=5)
    direct(torch.tensor([[1, 2, 3]])).sum().backward()
    assert direct.table.grad[direct.num_buckets].abs().sum() == 0
    assert direct.table.grad[:direct.num_buckets].abs().sum() > 0


def test_model_starts_as_the_plain_rnn_and_generation_context_matches():
    torch.manual_seed(0)
    model = RNNLanguageModel(30, 8, 8, num_layers=1, cell="elman", maxent_order=3, maxent_buckets=17,
                             init_range=0.1)
    assert model.maxent.table.abs().sum() == 0
    inputs, targets = torch.randint(0, 30, (2, 6)), torch.randint(0, 30, (2, 6))
    hidden, _ = model(inputs)
    plain = F.cross_entropy(model.decoder.logits(hidden.reshape(-1, 8)), targets.reshape(-1))
    assert torch.allclose(model.loss(hidden, targets, inputs), plain)
    with torch.no_grad():
        model.maxent.table.normal_()
    full = model.log_probs(hidden, inputs)[:, -1]
    assert torch.allclose(model.next_log_probs(hidden[:, -1], inputs), full, atol=1e-5)
    assert torch.allclose(full.exp().sum(-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(full, model.decoder.log_prob(hidden[:, -1]), atol=1e-3)


def test_direct_connections_learn_a_bigram_the_rnn_cannot_see():
    torch.manual_seed(0)
    # the next token is a fixed function of the current one; the RNN is frozen, so only the table can learn it
    model = RNNLanguageModel(20, 4, 4, num_layers=1, cell="elman", maxent_order=2, maxent_buckets=64, init_range=0.1)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("maxent"))
    perm = torch.randperm(20)
    inputs = torch.randint(0, 20, (8, 10))
    targets = perm[inputs]
    opt = torch.optim.SGD([model.maxent.table], lr=5.0)
    first = None
    for _ in range(60):
        hidden, _ = model(inputs)
        loss = model.loss(hidden, targets, inputs)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.2 * first


def test_errors():
    with pytest.raises(ValueError, match="output='softmax'"):
        RNNLanguageModel(30, 8, 8, num_layers=1, output="adaptive", cutoffs=[10], maxent_order=3)
    with pytest.raises(ValueError, match="order must be >= 2"):
        HashedNgramDirect(10, order=1)
    model = RNNLanguageModel(30, 8, 8, num_layers=1, maxent_order=3)
    hidden, _ = model(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="needs the inputs"):
        model.loss(hidden, torch.zeros(1, 4, dtype=torch.long))


def test_generation_with_direct_connections_is_reproducible():
    from recurrentkit.tasks.language_model import LanguageModelTask

    torch.manual_seed(0)
    task = LanguageModelTask(vocab_size=30, cell="gru", embedding_size=8, hidden_size=8, num_layers=1,
                             maxent_order=3, maxent_buckets=11)
    with torch.no_grad():
        task.model.maxent.table.normal_(std=3.0)
    first = task.generate_ids([1, 2, 3], max_new_tokens=12, seed=5)
    assert len(first) == 12 and all(0 <= i < 30 for i in first)
    assert task.generate_ids([1, 2, 3], max_new_tokens=12, seed=5) == first
    # greedy decoding follows the direct scores: the table dominates the tiny untrained RNN
    greedy = task.generate_ids([1, 2, 3], max_new_tokens=1, temperature=0)
    context = torch.tensor([[1, 2, 3]])
    hidden, _ = task.model(context)
    assert greedy[0] == int(task.model.log_probs(hidden, context)[0, -1].argmax())
