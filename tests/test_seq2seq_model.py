"""Seq2Seq: any registered cell on either side, padding invariance, step-by-step equals teacher forcing, beam width
1 equals greedy, and tiny models learn to copy and to reverse short sequences."""

import pytest
import torch
from torch.nn import functional as F

from recurrentkit import list_cells
from recurrentkit.models.seq2seq import BOS_ID, EOS_ID, PAD_ID, Seq2Seq, strip_special

CELL_KWARGS = {"esn": {"density": 0.5}}


def _batch(rows, pad=PAD_ID):
    lengths = torch.tensor([len(r) for r in rows])
    out = torch.full((len(rows), int(lengths.max())), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = torch.tensor(r)
    return out, lengths


def _model(cell="gru", attention="additive", **kw):
    defaults = dict(embedding_size=8, hidden_size=6, num_layers=2, bidirectional=True, decoder_hidden_size=10,
                    attention=attention, cell_kwargs=CELL_KWARGS.get(cell))
    return Seq2Seq(20, 17, cell=cell, **{**defaults, **kw}).eval()


@pytest.mark.parametrize("cell", list_cells())
def test_padded_batch_equals_each_row_alone_for_every_cell(cell):
    model = _model(cell)
    src, src_len = _batch([[5, 6, 7, 8, 9], [4, 5], [7, 7, 7]])
    tgt, _ = _batch([[BOS_ID, 4, 5, 6], [BOS_ID, 9], [BOS_ID, 8, 8]])
    logits = model(src, src_len, tgt)
    assert logits.shape == (3, 4, 17)
    for row in range(3):
        s, t = src[row:row + 1, :src_len[row]], tgt[row:row + 1]
        torch.testing.assert_close(model(s, None, t)[0], logits[row], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("attention", ["additive", "general", "dot", "none"])
@pytest.mark.parametrize("input_feeding", [False, True])
def test_step_by_step_decoding_equals_teacher_forcing(attention, input_feeding):
    model = _model("lstm", attention, hidden_size=5, input_feeding=input_feeding, dropout=0.3)
    src, src_len = _batch([[5, 6, 7, 8], [4, 5]])
    tgt = torch.tensor([[BOS_ID, 4, 5, 6, 7], [BOS_ID, 9, 9, 3, 0]])
    memory = model.encode(src, src_len)
    logits, attn = model.decode(tgt, memory, return_attention=True)
    state = model.initial_decoder_state(memory)
    for t in range(tgt.shape[1]):
        step, state, weights = model.decode_step(tgt[:, t], state, memory)
        torch.testing.assert_close(step, logits[:, t], atol=1e-5, rtol=1e-4)
        if attention == "none":
            assert weights is None and attn is None
        else:
            torch.testing.assert_close(weights, attn[:, t])
            torch.testing.assert_close(weights.sum(-1), torch.ones(2))
            assert torch.all(weights[1, 2:] == 0)  # the second source has 2 real tokens


@pytest.mark.parametrize("attention", ["additive", "none"])
def test_beam_width_one_equals_greedy(attention):
    model = _model("gru", attention)
    src, src_len = _batch([[5, 6, 7, 8, 9, 10], [4, 5], [7, 7, 7], [11, 12, 13, 14]])
    greedy = model.greedy(src, src_len, max_length=12)
    assert greedy == model.beam_search(src, src_len, beam_size=1, max_length=12)
    assert greedy == model.beam_search(src, src_len, beam_size=1, length_penalty=0.0, max_length=12)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_decoding_a_padded_batch_equals_decoding_each_row_alone(beam_size):
    model = _model("lstm", "additive")
    rows = [[5, 6, 7, 8, 9, 10, 11], [4, 5], [7, 7, 7]]
    src, src_len = _batch(rows)
    together = model.translate(src, src_len, beam_size=beam_size)
    assert together == [model.translate(torch.tensor([r]), beam_size=beam_size)[0] for r in rows]
    assert all(len(hyp) <= 2 * len(r) + 10 for hyp, r in zip(together, rows))


def test_beam_search_returns_the_best_normalised_hypothesis_it_kept():
    model = _model("gru", "general")
    src, src_len = _batch([[5, 6, 7, 8, 9, 10], [4, 5]])

    @torch.no_grad()
    def score(row, hyp):  # log p(hyp + </s> | src) / |hyp + </s>|
        tgt = torch.tensor([[BOS_ID, *hyp]])
        logp = F.log_softmax(model(src[row:row + 1, :src_len[row]], None, tgt)[0], -1)
        return float(sum(logp[t, tok] for t, tok in enumerate([*hyp, EOS_ID]))) / (len(hyp) + 1)

    for row, (beam, greedy) in enumerate(zip(model.beam_search(src, src_len, beam_size=4, max_length=40),
                                             model.greedy(src, src_len, max_length=40))):
        assert score(row, beam) >= score(row, greedy) - 1e-5 or len(greedy) >= 39


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match="tie_embeddings"):
        Seq2Seq(10, 10, embedding_size=8, hidden_size=6, tie_embeddings=True)
    with pytest.raises(ValueError, match="beam_size"):
        _model().beam_search(torch.tensor([[4, 5]]), beam_size=0)
    with pytest.raises(ValueError, match=r"src must be \[B, S\]"):
        _model().encode(torch.tensor([4, 5]))
    assert strip_special([BOS_ID, 5, 6, EOS_ID, 7]) == [5, 6]


def _train_on_rule(rule, steps=400, seed=0):
    """Train a tiny GRU+attention model on ``rule`` over random sequences of ids 4..11, length 2-6."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = Seq2Seq(12, 12, cell="gru", embedding_size=16, hidden_size=32, num_layers=1, bidirectional=True,
                    attention="general")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def sample(n):
        rows = [torch.randint(4, 12, (int(torch.randint(2, 7, (1,), generator=gen)),), generator=gen).tolist()
                for _ in range(n)]
        return rows, [rule(r) for r in rows]

    for _ in range(steps):
        rows, targets = sample(32)
        src, src_len = _batch(rows)
        tgt_in, _ = _batch([[BOS_ID, *t] for t in targets])
        tgt_out, _ = _batch([[*t, EOS_ID] for t in targets])
        loss = F.cross_entropy(model(src, src_len, tgt_in).transpose(1, 2), tgt_out, ignore_index=PAD_ID)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    rows, targets = sample(100)
    src, src_len = _batch(rows)
    return (sum(h == t for h, t in zip(model.greedy(src, src_len), targets)) / len(rows),
            sum(h == t for h, t in zip(model.beam_search(src, src_len, beam_size=3), targets)) / len(rows))


@pytest.mark.parametrize("name, rule", [("copy", lambda r: list(r)), ("reverse", lambda r: r[::-1])])
def test_learns_to_copy_and_to_reverse(name, rule):
    greedy, beam = _train_on_rule(rule)
    assert greedy >= 0.9, f"{name}: greedy exact match {greedy:.2f}"
    assert beam >= 0.9, f"{name}: beam exact match {beam:.2f}"
