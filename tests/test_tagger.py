"""RecurrentTagger: any registered cell, character encoders, padding invariance, and learning a synthetic rule."""

import pytest
import torch

from recurrentkit import list_cells
from recurrentkit.models.tagger import CharacterWordEncoder, RecurrentTagger, lengths_mask


def _padded_batch(lengths, vocab=12, chars=7, width=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    steps = max(lengths)
    tokens = torch.zeros(len(lengths), steps, dtype=torch.long)
    char_ids = torch.zeros(len(lengths), steps, width, dtype=torch.long)
    for i, n in enumerate(lengths):
        tokens[i, :n] = torch.randint(2, vocab, (n,), generator=gen)
        for t in range(n):
            k = int(torch.randint(1, width + 1, (1,), generator=gen))
            char_ids[i, t, :k] = torch.randint(2, chars, (k,), generator=gen)
    return tokens, torch.tensor(lengths), char_ids


@pytest.mark.parametrize("cell", list_cells())
def test_padded_batch_equals_unpadded_rows_for_every_cell(cell):
    model = RecurrentTagger(12, 5, cell=cell, embedding_size=6, hidden_size=8, char_vocab_size=7,
                            char_encoder="recurrent", char_hidden_size=4, crf=True).eval()
    tokens, lengths, chars = _padded_batch([5, 2, 4])
    scores = model(tokens, lengths, chars)
    mask = lengths_mask(lengths, *tokens.shape, tokens.device)
    tags = model.decode(scores, mask, pad_tag=-1)
    for i, n in enumerate(lengths.tolist()):
        alone = model(tokens[i:i + 1, :n], None, chars[i:i + 1, :n])
        torch.testing.assert_close(scores[i, :n], alone[0], atol=1e-5, rtol=1e-4)
        assert torch.equal(tags[i, :n], model.decode(alone, torch.ones(1, n, dtype=torch.bool))[0])
        assert (tags[i, n:] == -1).all()


@pytest.mark.parametrize("kind", ["cnn", "recurrent"])
def test_character_encoder_ignores_padding_and_gives_zeros_for_empty_rows(kind):
    encoder = CharacterWordEncoder(9, kind, embedding_size=5, hidden_size=6).eval()
    chars = torch.tensor([[3, 4, 5, 0, 0], [3, 4, 5, 0, 0], [0, 0, 0, 0, 0], [6, 0, 0, 0, 0]])
    out = encoder(chars)
    assert out.shape == (4, encoder.output_size)
    torch.testing.assert_close(out[0], encoder(chars[:1, :3])[0])
    torch.testing.assert_close(out[0], out[1])
    assert (out[2] == 0).all() and not (out[3] == 0).all()


def test_word_dropout_replaces_words_by_unk_only_in_training():
    model = RecurrentTagger(50, 3, embedding_size=4, hidden_size=4, word_dropout=0.5)
    tokens = torch.randint(2, 50, (4, 30))
    tokens[:, 25:] = 0
    seen = []
    model.embedding.register_forward_hook(lambda m, inp, out: seen.append(inp[0].clone()))
    model(tokens)
    replaced = seen[-1] != tokens
    assert replaced.any() and (seen[-1][replaced] == 1).all() and not replaced[:, 25:].any()
    model.eval()
    model(tokens)
    assert torch.equal(seen[-1], tokens)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="char_encoder"):
        RecurrentTagger(10, 3, char_vocab_size=5, char_encoder="transformer")
    model = RecurrentTagger(10, 3, char_vocab_size=5)
    with pytest.raises(ValueError, match="pass chars"):
        model(torch.ones(2, 3, dtype=torch.long))


def _rule_data(n, gen):
    """Tag 2 on the first token; afterwards 1 when the token is larger than the one before it, else 0."""
    lengths = torch.randint(2, 9, (n,), generator=gen)
    tokens = torch.randint(2, 8, (n, int(lengths.max())), generator=gen)
    mask = lengths_mask(lengths, *tokens.shape, tokens.device)
    tokens = tokens.masked_fill(~mask, 0)
    tags = torch.zeros_like(tokens)
    tags[:, 0] = 2
    tags[:, 1:] = (tokens[:, 1:] > tokens[:, :-1]).long()
    return tokens, lengths, tags, mask


@pytest.mark.parametrize("crf", [False, True])
def test_tagger_learns_a_synthetic_rule_exactly(crf):
    gen = torch.Generator().manual_seed(0)
    tokens, lengths, tags, mask = _rule_data(512, gen)
    model = RecurrentTagger(8, 3, embedding_size=8, hidden_size=16, crf=crf)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(80):
        optimizer.zero_grad()
        loss = model.loss(model(tokens, lengths), tags, mask)
        loss.backward()
        optimizer.step()
    model.eval()
    tokens, lengths, tags, mask = _rule_data(300, gen)  # unseen sentences
    predicted = model.decode(model(tokens, lengths), mask)
    assert torch.equal(predicted[mask], tags[mask])
