"""Output layers: full, adaptive and sampled softmax share one interface and agree where they should."""


import pytest
import torch
from torch.nn import functional as F

from recurrentkit.nn.softmax import (
    AdaptiveSoftmax,
    BlackOut,
    FullSoftmax,
    LogUniformSampler,
    SampledSoftmax,
    build_output_layer,
)

V, H, N = 50, 8, 30


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, H, generator=g), torch.randint(0, V, (N,), generator=g)


def test_full_softmax_matches_cross_entropy_and_log_prob():
    layer = FullSoftmax(H, V)
    hidden, targets = _data()
    logp = layer.log_prob(hidden)
    assert logp.shape == (N, V)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(N), atol=1e-5)
    assert torch.allclose(layer(hidden, targets), F.nll_loss(logp, targets), atol=1e-6)


def test_adaptive_log_prob_normalised_and_consistent_with_loss():
    torch.manual_seed(0)
    layer = AdaptiveSoftmax(H, V, cutoffs=[10, 30], div_value=2.0)
    hidden, targets = _data()
    logp = layer.log_prob(hidden)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(N), atol=1e-5)
    assert torch.allclose(layer(hidden, targets), F.nll_loss(logp, targets), atol=1e-5)
    with pytest.raises(ValueError, match="cutoffs"):
        AdaptiveSoftmax(H, V, cutoffs=[30, 10])
    with pytest.raises(ValueError, match="tying"):
        layer.tie_weight(torch.nn.Parameter(torch.zeros(V, H)))


def test_sampled_softmax_eval_equals_full_softmax_exactly():
    torch.manual_seed(0)
    sampled = SampledSoftmax(H, V, num_samples=10)
    full = FullSoftmax(H, V)
    full.load_state_dict(sampled.state_dict(), strict=False)
    full.decoder.load_state_dict(sampled.decoder.state_dict())
    hidden, targets = _data()
    sampled.eval()
    assert torch.equal(sampled(hidden, targets), full(hidden, targets))
    assert torch.equal(sampled.log_prob(hidden), full.log_prob(hidden))
    sampled.train()
    train_loss = sampled(hidden, targets)
    assert torch.isfinite(train_loss) and not torch.equal(train_loss, full(hidden, targets))


@pytest.mark.parametrize("layer_class", [SampledSoftmax, BlackOut])
def test_sampled_losses_written_out_with_accidental_hits(layer_class):
    """Per row, over the target and the samples other than the target, weights 1/Q: the sampled softmax is
    -log p~(target); BlackOut (Ji et al.) also subtracts the sum over those samples of log(1 - p~(s))."""
    torch.manual_seed(0)
    layer = layer_class(H, V, num_samples=4)
    hidden, targets = _data()
    samples = torch.tensor([targets[0].item(), 1, 2, 3])  # sample 0 hits row 0's target
    loss = layer.sampled_loss(hidden, targets, samples)
    w, b = layer.decoder.weight, layer.decoder.bias
    q = LogUniformSampler(V).probability
    expected = 0.0
    for i in range(N):
        ids = [targets[i].item(), *(s for s in samples.tolist() if s != targets[i].item())]
        weighted = torch.stack([torch.exp(hidden[i] @ w[j] + b[j]) / q(torch.tensor([j]))[0] for j in ids])
        p = weighted / weighted.sum()
        expected = expected - torch.log(p[0])
        if layer_class is BlackOut:
            expected = expected - torch.log1p(-p[1:]).sum()
    torch.testing.assert_close(loss, expected / N, rtol=1e-5, atol=1e-6)
    if layer_class is BlackOut:
        sampled = SampledSoftmax(H, V, num_samples=4)
        sampled.load_state_dict(layer.state_dict())
        assert loss > sampled.sampled_loss(hidden, targets, samples)  # the extra terms are positive


def test_blackout_trains_and_evaluates_as_full_softmax():
    torch.manual_seed(1)
    layer = BlackOut(H, V, num_samples=6)
    hidden, targets = _data()
    full = F.cross_entropy(layer.decoder(hidden), targets)
    assert torch.equal(layer.eval()(hidden, targets), full)
    layer.train()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(200):
        optimizer.zero_grad()
        layer(hidden, targets).backward()
        optimizer.step()
    assert F.cross_entropy(layer.decoder(hidden), targets) < 0.5 * full  # fits the batch under the exact softmax


def test_sampled_softmax_with_all_samples_is_full():
    layer = SampledSoftmax(H, V, num_samples=V).train()
    hidden, targets = _data()
    assert torch.allclose(layer(hidden, targets), F.cross_entropy(layer.decoder(hidden), targets))


def test_log_uniform_sampler_matches_its_distribution():
    sampler = LogUniformSampler(20)
    probs = sampler.probability(torch.arange(20))
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert (probs[:-1] > probs[1:]).all()
    g = torch.Generator().manual_seed(0)
    counts = torch.bincount(sampler.sample(200_000, generator=g), minlength=20).float() / 200_000
    assert torch.allclose(counts, probs, atol=5e-3)


def test_sampled_softmax_gradient_is_sparse_in_vocab():
    layer = SampledSoftmax(H, V, num_samples=5).train()
    hidden, targets = _data()
    samples = torch.tensor([0, 1, 2, 3, 4])
    layer.sampled_loss(hidden, targets, samples).backward()
    touched = set(targets.tolist()) | set(samples.tolist())
    rows = (layer.decoder.weight.grad.abs().sum(-1) > 0).nonzero().flatten().tolist()
    assert set(rows) <= touched


def test_factory_and_tying():
    assert isinstance(build_output_layer("softmax", H, V), FullSoftmax)
    assert isinstance(build_output_layer("adaptive", H, V, cutoffs=[10]), AdaptiveSoftmax)
    assert isinstance(build_output_layer("sampled", H, V, num_samples=3), SampledSoftmax)
    assert isinstance(build_output_layer("blackout", H, V, num_samples=3), BlackOut)
    with pytest.raises(ValueError, match="cutoffs"):
        build_output_layer("adaptive", H, V)
    with pytest.raises(ValueError, match="unknown output layer"):
        build_output_layer("hierarchical", H, V)
    emb = torch.nn.Embedding(V, H)
    layer = build_output_layer("softmax", H, V)
    layer.tie_weight(emb.weight)
    assert layer.decoder.weight is emb.weight
    with pytest.raises(ValueError, match="cannot tie"):
        build_output_layer("softmax", H + 1, V).tie_weight(emb.weight)
    with pytest.raises(ValueError, match=r"hidden must be \[N, 8\]"):
        layer(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long))
