"""LinearChainCRF: forward algorithm and Viterbi against brute-force enumeration; padding; errors."""

import itertools

import pytest
import torch

from recurrentkit.nn.crf import LinearChainCRF


def _random_crf(num_tags: int, seed: int = 0) -> LinearChainCRF:
    crf = LinearChainCRF(num_tags)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return crf.double()


def _brute_force(crf: LinearChainCRF, emissions: torch.Tensor) -> tuple[torch.Tensor, list[int], torch.Tensor]:
    """log Z, the best path and its score of ONE unpadded sequence [T, C], by enumerating every path."""
    steps, num_tags = emissions.shape
    scores, paths = [], list(itertools.product(range(num_tags), repeat=steps))
    for path in paths:
        s = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
        s = s + sum(emissions[t, y] for t, y in enumerate(path))
        s = s + sum(crf.transitions[a, b] for a, b in zip(path[:-1], path[1:]))
        scores.append(s)
    scores = torch.stack(scores)
    best = int(scores.argmax())
    return torch.logsumexp(scores, 0), list(paths[best]), scores[best]


@pytest.mark.parametrize("num_tags,steps", [(1, 3), (2, 1), (3, 4), (4, 3)])
def test_log_partition_and_viterbi_equal_brute_force(num_tags, steps):
    crf = _random_crf(num_tags, seed=num_tags * 10 + steps)
    emissions = torch.randn(2, steps, num_tags, dtype=torch.float64)
    log_z = crf.log_partition(emissions)
    tags, best_scores = crf.decode(emissions)
    for row in range(2):
        want_z, want_path, want_score = _brute_force(crf, emissions[row])
        torch.testing.assert_close(log_z[row], want_z)
        assert tags[row].tolist() == want_path
        torch.testing.assert_close(best_scores[row], want_score)
    torch.testing.assert_close(crf.score(emissions, tags), best_scores)


def test_padded_batch_equals_unpadded_rows():
    crf = _random_crf(3, seed=7)
    lengths = [4, 1, 3]
    rows = [torch.randn(n, 3, dtype=torch.float64) for n in lengths]
    padded = torch.zeros(3, 4, 3, dtype=torch.float64)
    for i, row in enumerate(rows):
        padded[i, :len(row)] = row
        padded[i, len(row):] = 100.0  # garbage at padded steps must not matter
    mask = torch.arange(4).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    gold = torch.randint(0, 3, (3, 4))
    log_z = crf.log_partition(padded, mask)
    tags, _ = crf.decode(padded, mask, pad_tag=-1)
    nll = crf(padded, gold, mask, reduction="none")
    for i, row in enumerate(rows):
        alone = row.unsqueeze(0)
        torch.testing.assert_close(log_z[i], crf.log_partition(alone)[0])
        want_z, want_path, _ = _brute_force(crf, row)
        torch.testing.assert_close(log_z[i], want_z)
        assert tags[i, :len(row)].tolist() == want_path
        assert (tags[i, len(row):] == -1).all()
        torch.testing.assert_close(nll[i], crf(alone, gold[i:i + 1, :len(row)], reduction="none")[0])


def test_probabilities_of_all_paths_sum_to_one():
    crf = _random_crf(3, seed=3)
    emissions = torch.randn(1, 3, 3, dtype=torch.float64)
    total = sum(torch.exp(-crf(emissions, torch.tensor([p]), reduction="sum"))
                for p in itertools.product(range(3), repeat=3))
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64))


def test_nll_is_differentiable_and_reductions_agree():
    crf = LinearChainCRF(4)
    emissions = torch.randn(2, 5, 4, requires_grad=True)
    tags = torch.randint(0, 4, (2, 5))
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    per_row = crf(emissions, tags, mask, reduction="none")
    torch.testing.assert_close(crf(emissions, tags, mask, reduction="token_mean"), per_row.sum() / 8)
    torch.testing.assert_close(crf(emissions, tags, mask, reduction="mean"), per_row.mean())
    per_row.sum().backward()
    assert emissions.grad is not None and crf.transitions.grad is not None
    assert (per_row > 0).all()  # -log p > 0 for a path that is one of many


def test_untrained_crf_decodes_the_argmax():
    emissions = torch.randn(3, 6, 5)
    tags, _ = LinearChainCRF(5).decode(emissions)
    assert torch.equal(tags, emissions.argmax(-1))


def test_bad_inputs_raise():
    crf = LinearChainCRF(3)
    with pytest.raises(ValueError, match="emissions must be"):
        crf.log_partition(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="mask\\[:, 0\\]"):
        crf.log_partition(torch.randn(2, 4, 3), torch.tensor([[False] * 4, [True] * 4]))
    with pytest.raises(ValueError, match="reduction"):
        crf(torch.randn(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), reduction="avg")
    with pytest.raises(ValueError, match="num_tags"):
        LinearChainCRF(0)
