"""Pool the outputs of a recurrent layer over time into one vector per sequence, ignoring padded steps.

Every function takes batch-first outputs ``[B, T, F]`` and ``lengths`` ``[B]`` (``None``: no padding). Padded
steps never reach the result, whatever values they hold.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

POOLING_MODES = ("last", "mean", "max", "attention")


def length_mask(lengths: Tensor | None, steps: int, batch: int, device: torch.device | None = None) -> Tensor:
    """``[B, T]`` boolean mask, ``True`` at real steps."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.unsqueeze(1)


def last_pool(outputs: Tensor, lengths: Tensor | None = None, num_directions: int = 1) -> Tensor:
    """The final output of each direction: ``h_{len-1}`` of the forward part and ``h_0`` of the backward part.

    The backward direction reads each sequence from its last real step down to step 0, so its "last" output sits
    at ``t = 0``. ``outputs`` is ``[B, T, D * H]`` with the forward features first (as :class:`Recurrent` returns).
    """
    batch, steps, features = outputs.shape
    if num_directions not in (1, 2) or features % num_directions:
        raise ValueError(f"cannot split {features} features into {num_directions} directions")
    if lengths is None:
        last = torch.full((batch,), steps - 1, dtype=torch.long, device=outputs.device)
    else:
        last = torch.as_tensor(lengths, device=outputs.device).long() - 1
    index = last.view(batch, 1, 1).expand(batch, 1, features)
    forward = outputs.gather(1, index).squeeze(1)
    if num_directions == 1:
        return forward
    hidden = features // 2
    return torch.cat([forward[:, :hidden], outputs[:, 0, hidden:]], dim=-1)


def mean_pool(outputs: Tensor, lengths: Tensor | None = None) -> Tensor:
    """``(1/len) Σ_{t < len} h_t``."""
    mask = length_mask(lengths, outputs.shape[1], outputs.shape[0], outputs.device).unsqueeze(-1)
    total = torch.where(mask, outputs, torch.zeros((), dtype=outputs.dtype, device=outputs.device)).sum(1)
    return total / mask.sum(1).clamp(min=1).to(outputs.dtype)


def max_pool(outputs: Tensor, lengths: Tensor | None = None) -> Tensor:
    """``max_{t < len} h_t``, feature-wise."""
    mask = length_mask(lengths, outputs.shape[1], outputs.shape[0], outputs.device).unsqueeze(-1)
    low = torch.finfo(outputs.dtype).min
    return torch.where(mask, outputs, torch.full((), low, dtype=outputs.dtype, device=outputs.device)).amax(1)


class AttentionPooling(nn.Module):
    """Additive self-attention over time (Bahdanau-style scores, as in Yang et al. 2016)::

        e_t = vᵀ tanh(W h_t + b),   α = softmax_{t < len}(e),   out = Σ_t α_t h_t
    """

    def __init__(self, input_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = attention_size or input_size
        self.proj = nn.Linear(input_size, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def weights(self, outputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Attention weights ``α`` [B, T]; zero at padded steps."""
        scores = self.score(torch.tanh(self.proj(outputs))).squeeze(-1)
        mask = length_mask(lengths, outputs.shape[1], outputs.shape[0], outputs.device)
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=1)

    def forward(self, outputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        alpha = self.weights(outputs, lengths)
        # padded steps may hold anything (even inf/nan): zero them before the weighted sum
        mask = length_mask(lengths, outputs.shape[1], outputs.shape[0], outputs.device).unsqueeze(-1)
        outputs = torch.where(mask, outputs, torch.zeros((), dtype=outputs.dtype, device=outputs.device))
        return torch.bmm(alpha.unsqueeze(1), outputs).squeeze(1)


class SequencePooling(nn.Module):
    """One of :data:`POOLING_MODES` as a module: ``forward(outputs [B, T, F], lengths [B]) -> [B, F]``.

    Args:
        mode: ``"last"`` (final output of each direction), ``"mean"``, ``"max"`` or ``"attention"``.
        input_size: features ``F`` of the outputs (needed by ``"attention"``).
        num_directions: 2 when the outputs hold a forward and a backward half (``"last"`` needs it).
        attention_size: hidden size of the attention scorer (default ``input_size``).
    """

    def __init__(self, mode: str = "last", input_size: int | None = None, num_directions: int = 1,
                 attention_size: int | None = None) -> None:
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {mode!r}")
        if mode == "attention" and not input_size:
            raise ValueError("attention pooling needs input_size")
        self.mode, self.num_directions = mode, num_directions
        self.attention = AttentionPooling(input_size, attention_size) if mode == "attention" else None
        self.output_size = input_size

    def forward(self, outputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        if outputs.dim() != 3:
            raise ValueError(f"pooling expects batch-first outputs [B, T, F], got shape {tuple(outputs.shape)}")
        if self.mode == "last":
            return last_pool(outputs, lengths, self.num_directions)
        if self.mode == "mean":
            return mean_pool(outputs, lengths)
        if self.mode == "max":
            return max_pool(outputs, lengths)
        return self.attention(outputs, lengths)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, num_directions={self.num_directions}"
