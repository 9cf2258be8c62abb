"""Dropout for recurrent networks: locked (variational) dropout, embedding dropout and weight drop (DropConnect).

These are the three regularisers of AWD-LSTM (Merity et al. 2018, "Regularizing and Optimizing LSTM Language
Models"), after Gal & Ghahramani (2016) and Wan et al. (2013).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize


def _check_p(p: float, name: str = "p") -> float:
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {p}")
    return float(p)


class LockedDropout(nn.Module):
    """Variational dropout: one Bernoulli mask per sequence, shared over all time steps.

    ``y[b, t, f] = x[b, t, f] * m[b, f] / (1 - p)`` with ``m ~ Bernoulli(1 - p)``; identity in eval mode.

    Args:
        p: probability of dropping a feature.
        batch_first: inputs are ``[B, T, F]`` (default) rather than ``[T, B, F]``.
    """

    def __init__(self, p: float = 0.5, batch_first: bool = True) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.batch_first = batch_first

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.dim() != 3:
            raise ValueError(f"LockedDropout expects a 3-D input, got shape {tuple(x.shape)}")
        time_dim = 1 if self.batch_first else 0
        shape = list(x.shape)
        shape[time_dim] = 1
        mask = x.new_empty(shape).bernoulli_(1.0 - self.p).div_(1.0 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, batch_first={self.batch_first}"


def embedding_dropout(embedding: nn.Embedding, words: Tensor, p: float, training: bool = True) -> Tensor:
    """Embedding lookup with whole words dropped: rows of the embedding matrix are zeroed with probability ``p``
    (the same words are dropped everywhere in the batch) and the kept rows are scaled by ``1 / (1 - p)``.
    """
    p = _check_p(p)
    weight = embedding.weight
    if training and p > 0.0:
        mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1.0 - p).div_(1.0 - p)
        weight = weight * mask
    return F.embedding(words, weight, embedding.padding_idx, embedding.max_norm, embedding.norm_type,
                       embedding.scale_grad_by_freq, embedding.sparse)


class WeightDrop(nn.Module):
    """DropConnect parametrization: ``W -> dropout(W, p)`` in training mode, ``W`` unchanged in eval mode.

    Register it with :func:`weight_drop_` (``torch.nn.utils.parametrize``). The parametrized weight is recomputed —
    with a new mask — every time it is read; wrap a forward pass in ``torch.nn.utils.parametrize.cached()`` to use
    one mask for the whole sequence, as AWD-LSTM does (:class:`~recurrentkit.models.lm.RNNLanguageModel` does).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = _check_p(p)

    def forward(self, weight: Tensor) -> Tensor:
        return F.dropout(weight, self.p, self.training)

    def right_inverse(self, weight: Tensor) -> Tensor:
        return weight

    def extra_repr(self) -> str:
        return f"p={self.p}"


def weight_drop_(module: nn.Module, p: float, names: Iterable[str] = ("weight_hh",)) -> list[str]:
    """Add :class:`WeightDrop` to every parameter called one of ``names`` in ``module`` and its submodules.

    Returns the qualified names of the parametrized weights. Raises ``ValueError`` when none was found and
    ``TypeError`` when a name is a buffer (e.g. the fixed reservoir of the echo-state cell).
    """
    p = _check_p(p)
    names = tuple(names)
    done: list[str] = []
    for prefix, sub in list(module.named_modules()):
        if isinstance(sub, parametrize.ParametrizationList):
            continue
        for name in names:
            if parametrize.is_parametrized(sub, name):
                continue
            if name in sub._buffers:
                raise TypeError(f"cannot weight-drop {prefix + '.' if prefix else ''}{name}: it is a buffer, "
                                f"not a trainable parameter")
            if isinstance(sub._parameters.get(name), nn.Parameter):
                parametrize.register_parametrization(sub, name, WeightDrop(p))
                done.append(f"{prefix}.{name}" if prefix else name)
    if not done:
        raise ValueError(f"weight_drop_ found no parameter named {names} in {type(module).__name__}")
    return done


def remove_weight_drop_(module: nn.Module, names: Iterable[str] = ("weight_hh",)) -> None:
    """Undo :func:`weight_drop_`, keeping the raw (undropped) weights as plain parameters."""
    names = tuple(names)
    for sub in list(module.modules()):
        for name in names:
            if parametrize.is_parametrized(sub, name):
                parametrize.remove_parametrizations(sub, name, leave_parametrized=False)


__all__ = ["LockedDropout", "WeightDrop", "embedding_dropout", "remove_weight_drop_", "weight_drop_"]
