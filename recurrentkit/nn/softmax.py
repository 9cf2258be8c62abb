"""Output layers of a language model, one interface:

* ``forward(hidden [N, H], targets [N]) -> loss``: mean negative log-likelihood (nats per token);
* ``log_prob(hidden [N, H]) -> [N, V]``: full log-probabilities (rows sum to one in probability).

:class:`FullSoftmax` is the plain linear + softmax; :class:`AdaptiveSoftmax` wraps
``torch.nn.AdaptiveLogSoftmaxWithLoss`` (Grave et al. 2017); :class:`SampledSoftmax` trains on a sampled subset of
the vocabulary (Jean et al. 2015) and evaluates with the exact full softmax.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _check_inputs(hidden: Tensor, targets: Tensor | None, in_features: int) -> None:
    if hidden.dim() != 2 or hidden.shape[1] != in_features:
        raise ValueError(f"hidden must be [N, {in_features}], got shape {tuple(hidden.shape)}")
    if targets is not None and targets.shape != hidden.shape[:1]:
        raise ValueError(f"targets must be [N] = [{hidden.shape[0]}], got shape {tuple(targets.shape)}")


class OutputLayer(nn.Module):
    """Base class: ``in_features`` -> a distribution over ``vocab_size`` tokens."""

    in_features: int
    vocab_size: int
    supports_tying: bool = False

    def forward(self, hidden: Tensor, targets: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def log_prob(self, hidden: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def tie_weight(self, weight: nn.Parameter) -> None:
        """Share the output matrix with ``weight`` [V, H] (the input embedding: Press & Wolf 2017)."""
        raise ValueError(f"{type(self).__name__} does not support weight tying; use output='softmax' or 'sampled'")


class FullSoftmax(OutputLayer):
    """``log p(w | h) = log_softmax(W h + b)_w`` over the whole vocabulary."""

    supports_tying = True

    def __init__(self, in_features: int, vocab_size: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.vocab_size = int(in_features), int(vocab_size)
        self.decoder = nn.Linear(in_features, vocab_size, bias=bias)

    def tie_weight(self, weight: nn.Parameter) -> None:
        if tuple(weight.shape) != tuple(self.decoder.weight.shape):
            raise ValueError(f"cannot tie a weight of shape {tuple(weight.shape)} to an output layer of shape "
                             f"{tuple(self.decoder.weight.shape)}")
        self.decoder.weight = weight

    def logits(self, hidden: Tensor) -> Tensor:
        return self.decoder(hidden)

    def forward(self, hidden: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(hidden, targets, self.in_features)
        return F.cross_entropy(self.decoder(hidden), targets)

    def log_prob(self, hidden: Tensor) -> Tensor:
        _check_inputs(hidden, None, self.in_features)
        return F.log_softmax(self.decoder(hidden), dim=-1)


class AdaptiveSoftmax(OutputLayer):
    """Adaptive softmax: a head over the ``cutoffs[0]`` most frequent ids plus one entry per tail cluster; tail
    clusters use smaller projections (``in_features / div_value**i``). Ids must be sorted by frequency.
    """

    def __init__(self, in_features: int, vocab_size: int, cutoffs: Sequence[int], div_value: float = 4.0,
                 head_bias: bool = False) -> None:
        super().__init__()
        cutoffs = [int(c) for c in cutoffs]
        if not cutoffs or cutoffs != sorted(set(cutoffs)) or cutoffs[0] <= 0 or cutoffs[-1] >= vocab_size:
            raise ValueError(f"cutoffs must be increasing, unique and in (0, vocab_size={vocab_size}), "
                             f"got {cutoffs}")
        self.in_features, self.vocab_size = int(in_features), int(vocab_size)
        self.cutoffs = cutoffs
        self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(in_features, vocab_size, cutoffs, div_value=div_value,
                                                      head_bias=head_bias)

    def forward(self, hidden: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(hidden, targets, self.in_features)
        return self.adaptive(hidden, targets).loss

    def log_prob(self, hidden: Tensor) -> Tensor:
        _check_inputs(hidden, None, self.in_features)
        return self.adaptive.log_prob(hidden)


class LogUniformSampler:
    """Log-uniform (Zipfian) distribution over ids ``0..V-1`` sorted by decreasing frequency:

        ``Q(k) = (log(k + 2) - log(k + 1)) / log(V + 1)``

    sampled by inverting its CDF ``F(k) = log(k + 2) / log(V + 1)`` (as TensorFlow's
    ``log_uniform_candidate_sampler``).
    """

    def __init__(self, vocab_size: int) -> None:
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
        self.vocab_size = int(vocab_size)
        self.log_range = math.log(self.vocab_size + 1)

    def probability(self, ids: Tensor) -> Tensor:
        ids = ids.double()
        return ((torch.log(ids + 2) - torch.log(ids + 1)) / self.log_range).float()

    def sample(self, num_samples: int, device: torch.device | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        u = torch.rand(num_samples, device=device, dtype=torch.float64, generator=generator)
        ids = (torch.exp(u * self.log_range).floor().long() - 1).clamp_(0, self.vocab_size - 1)
        return ids


class SampledSoftmax(OutputLayer):
    """Sampled softmax (Jean et al. 2015) with a log-uniform sampler, for very large vocabularies.

    In training mode, ``S = num_samples`` ids are drawn (with replacement, shared by the batch) from ``Q`` and each
    row is scored against its target and the samples only, with the ``log Q`` correction::

        logits = [w_y·h + b_y - log(S Q(y)),  w_s·h + b_s - log(S Q(s)) for s in samples]
        loss = cross_entropy(logits, 0)

    A sample equal to the row's target (an "accidental hit") is masked out. In eval mode, and when
    ``num_samples >= vocab_size``, the loss is the exact full-softmax loss. Ids must be sorted by frequency.
    """

    supports_tying = True

    def __init__(self, in_features: int, vocab_size: int, num_samples: int = 8192, bias: bool = True) -> None:
        super().__init__()
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        self.in_features, self.vocab_size = int(in_features), int(vocab_size)
        self.num_samples = int(num_samples)
        self.decoder = nn.Linear(in_features, vocab_size, bias=bias)
        self.sampler = LogUniformSampler(vocab_size)

    tie_weight = FullSoftmax.tie_weight

    def forward(self, hidden: Tensor, targets: Tensor) -> Tensor:
        _check_inputs(hidden, targets, self.in_features)
        if not self.training or self.num_samples >= self.vocab_size:
            return F.cross_entropy(self.decoder(hidden), targets)
        samples = self.sampler.sample(self.num_samples, device=hidden.device)
        return self.sampled_loss(hidden, targets, samples)

    def sampled_loss(self, hidden: Tensor, targets: Tensor, samples: Tensor) -> Tensor:
        """The sampled-softmax loss for given ``samples`` [S] (exposed for testing)."""
        logits = self.corrected_logits(hidden, targets, samples)
        return F.cross_entropy(logits, torch.zeros_like(targets))

    def corrected_logits(self, hidden: Tensor, targets: Tensor, samples: Tensor) -> Tensor:
        """``[N, 1 + S]``: each row's target logit, then the samples', all minus ``log(S Q)``; hits set to -inf."""
        weight, bias = self.decoder.weight, self.decoder.bias
        log_expected_count = torch.log(self.num_samples * self.sampler.probability(torch.cat([targets, samples])))
        log_q_true, log_q_sampled = log_expected_count.to(hidden.dtype).split([targets.shape[0], samples.shape[0]])
        true_logits = (hidden * weight[targets]).sum(-1)
        sampled_logits = hidden @ weight[samples].t()
        if bias is not None:
            true_logits = true_logits + bias[targets]
            sampled_logits = sampled_logits + bias[samples]
        true_logits = true_logits - log_q_true
        sampled_logits = sampled_logits - log_q_sampled
        hits = targets.unsqueeze(1) == samples.unsqueeze(0)
        sampled_logits = sampled_logits.masked_fill(hits, torch.finfo(sampled_logits.dtype).min)
        return torch.cat([true_logits.unsqueeze(1), sampled_logits], dim=1)

    def log_prob(self, hidden: Tensor) -> Tensor:
        _check_inputs(hidden, None, self.in_features)
        return F.log_softmax(self.decoder(hidden), dim=-1)


class BlackOut(SampledSoftmax):
    """BlackOut (Ji et al. 2016, "BlackOut: Speeding up recurrent neural network language models with very large
    vocabularies"): the sampled softmax's weighted distribution over the target and the samples, trained with a
    discriminative loss that also pushes every sample's probability down::

        p~_j = exp(s_j) / sum_{k in {y} + S} exp(s_k),   s_j = w_j·h + b_j - log Q(j)   (weights 1 / Q(j))
        loss = -log p~_y - sum_{s in S, s != y} log(1 - p~_s)

    The samples ``S`` (shared by the batch, drawn with replacement) come from the log-uniform proposal of
    :class:`SampledSoftmax` (Zipf's law over frequency-sorted ids, close to the unigram distribution; the paper draws
    from the unigram distribution raised to a tuned power). Accidental hits are masked out. In eval mode the loss is
    the exact full-softmax loss.
    """

    def sampled_loss(self, hidden: Tensor, targets: Tensor, samples: Tensor) -> Tensor:
        """The BlackOut loss for given ``samples`` [S] (exposed for testing)."""
        log_p = F.log_softmax(self.corrected_logits(hidden, targets, samples).float(), dim=1)
        # log(1 - p) of the samples: a masked accidental hit has p = 0 and adds log 1 = 0
        log_not = torch.log((-torch.expm1(log_p[:, 1:])).clamp_min(torch.finfo(log_p.dtype).tiny))
        return -(log_p[:, 0] + log_not.sum(1)).mean()


OUTPUT_KINDS = ("softmax", "adaptive", "sampled", "blackout")


def build_output_layer(kind: str, in_features: int, vocab_size: int, *, cutoffs: Sequence[int] | None = None,
                       num_samples: int = 8192, div_value: float = 4.0, bias: bool = True) -> OutputLayer:
    """``"softmax"`` -> :class:`FullSoftmax`, ``"adaptive"`` -> :class:`AdaptiveSoftmax` (needs ``cutoffs``),
    ``"sampled"`` -> :class:`SampledSoftmax`, ``"blackout"`` -> :class:`BlackOut`."""
    if kind == "softmax":
        return FullSoftmax(in_features, vocab_size, bias=bias)
    if kind == "adaptive":
        if not cutoffs:
            raise ValueError("output='adaptive' needs cutoffs, e.g. [2000, 10000] for a 33k vocabulary")
        return AdaptiveSoftmax(in_features, vocab_size, cutoffs, div_value=div_value)
    if kind in ("sampled", "blackout"):
        layer = SampledSoftmax if kind == "sampled" else BlackOut
        return layer(in_features, vocab_size, num_samples=num_samples, bias=bias)
    raise ValueError(f"unknown output layer {kind!r}; choose one of {OUTPUT_KINDS}")


__all__ = ["OUTPUT_KINDS", "AdaptiveSoftmax", "BlackOut", "FullSoftmax", "LogUniformSampler", "OutputLayer",
           "SampledSoftmax", "build_output_layer"]
