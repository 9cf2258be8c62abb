"""Attention over an encoder's outputs (the "memory"), with padded source positions masked out.

For a decoder query ``q`` [B, Dq] and memory ``h_1..h_S`` [B, S, Dm] with a mask ``m`` [B, S] (True at real
tokens), every module computes scores ``e_s``, then::

    α_s = exp(e_s) / Σ_{s': m_{s'}} exp(e_{s'})    for m_s = 1,   α_s = 0 for m_s = 0
    c   = Σ_s α_s h_s                                # the context vector [B, Dm]

The scores:

* :class:`AdditiveAttention` (Bahdanau, Cho & Bengio 2015): ``e_s = vᵀ tanh(W_q q + W_h h_s + b)``.
* :class:`MultiplicativeAttention` (Luong, Pham & Manning 2015): ``"general"``: ``e_s = qᵀ W h_s``;
  ``"dot"``: ``e_s = qᵀ h_s`` (needs ``Dq == Dm``).

The part that depends on the memory only (``W_h h_s``, ``W h_s``) is computed once per source sentence by
:meth:`Attention.prepare` and reused at every decoder step. Queries may carry a time axis ([B, T, Dq]): all ``T``
steps are then scored in one batched product (teacher forcing without input feeding).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ATTENTION_KINDS", "AdditiveAttention", "Attention", "MultiplicativeAttention", "build_attention",
           "masked_softmax"]


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last axis with ``mask`` (True = keep; broadcast to ``scores``) zeroing the rest exactly.

    Raises ``ValueError`` when a row has no unmasked position (an empty source sentence)."""
    if mask is None:
        return torch.softmax(scores, dim=-1)
    mask = mask.to(torch.bool)
    if not bool(mask.any(-1).all()):
        raise ValueError("attention mask has a row with no unmasked position (an empty source sentence?)")
    while mask.dim() < scores.dim():  # [B, S] -> [B, 1, S] for queries [B, T, Dq]
        mask = mask.unsqueeze(-2)
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class Attention(nn.Module):
    """Base class: ``forward(query, memory, mask=None, keys=None) -> (context, weights)``.

    ``query`` [B, Dq] or [B, T, Dq]; ``memory`` [B, S, Dm]; ``mask`` [B, S] (True at real source tokens);
    ``keys`` the result of :meth:`prepare` (computed here when omitted). Returns ``context`` [B, (T,) Dm] and
    ``weights`` [B, (T,) S], which sum to one over unmasked positions and are exactly zero on masked ones.
    """

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        if query_size < 1 or memory_size < 1:
            raise ValueError(f"query_size and memory_size must be positive, got {query_size} and {memory_size}")
        self.query_size, self.memory_size = query_size, memory_size

    def prepare(self, memory: Tensor) -> Tensor:
        """The memory-only part of the score, computed once per source batch."""
        return memory

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Scores [B, (T,) S] of ``query`` [B, (T,) Dq] against the prepared ``keys``."""
        raise NotImplementedError

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor | None = None, keys: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        if memory.dim() != 3 or memory.shape[-1] != self.memory_size:
            raise ValueError(f"memory must be [B, S, {self.memory_size}], got shape {tuple(memory.shape)}")
        if query.dim() not in (2, 3) or query.shape[-1] != self.query_size or query.shape[0] != memory.shape[0]:
            raise ValueError(f"query must be [B, {self.query_size}] or [B, T, {self.query_size}] with "
                             f"B={memory.shape[0]}, got shape {tuple(query.shape)}")
        if mask is not None and mask.shape != memory.shape[:2]:
            raise ValueError(f"mask must be [B, S] = {tuple(memory.shape[:2])}, got {tuple(mask.shape)}")
        keys = self.prepare(memory) if keys is None else keys
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query                      # [B, T, Dq]
        weights = masked_softmax(self.score(q, keys), mask)              # [B, T, S]
        context = torch.bmm(weights, memory)                             # [B, T, Dm]
        return (context.squeeze(1), weights.squeeze(1)) if single else (context, weights)


class AdditiveAttention(Attention):
    """Bahdanau et al. (2015): ``e_s = vᵀ tanh(W_q q + W_h h_s + b)`` with ``attention_size`` hidden units."""

    def __init__(self, query_size: int, memory_size: int, attention_size: int | None = None) -> None:
        super().__init__(query_size, memory_size)
        attention_size = attention_size or query_size
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)
        self.memory_proj = nn.Linear(memory_size, attention_size, bias=True)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        return self.memory_proj(memory)                                  # [B, S, A]

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.query_proj(query).unsqueeze(2) + keys.unsqueeze(1))  # [B, T, S, A]
        return self.v(hidden).squeeze(-1)


class MultiplicativeAttention(Attention):
    """Luong et al. (2015): ``"general"`` ``e_s = qᵀ W h_s`` or ``"dot"`` ``e_s = qᵀ h_s``."""

    def __init__(self, query_size: int, memory_size: int, form: str = "general") -> None:
        super().__init__(query_size, memory_size)
        if form not in ("general", "dot"):
            raise ValueError(f"form must be 'general' or 'dot', got {form!r}")
        if form == "dot" and query_size != memory_size:
            raise ValueError(f"dot attention needs equal query and memory sizes, got {query_size} and "
                             f"{memory_size}; use 'general'")
        self.form = form
        self.memory_proj = nn.Linear(memory_size, query_size, bias=False) if form == "general" else None

    def prepare(self, memory: Tensor) -> Tensor:
        return memory if self.memory_proj is None else self.memory_proj(memory)  # [B, S, Dq]

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(query, keys.transpose(1, 2))

    def extra_repr(self) -> str:
        return f"form={self.form!r}"


ATTENTION_KINDS = ("additive", "bahdanau", "general", "luong", "dot", "none")


def build_attention(kind: str | None, query_size: int, memory_size: int, attention_size: int | None = None
                    ) -> Attention | None:
    """``"additive"``/``"bahdanau"``, ``"general"``/``"luong"``, ``"dot"``, or ``"none"``/``None`` (no attention)."""
    if kind is None or kind == "none":
        return None
    if kind in ("additive", "bahdanau"):
        return AdditiveAttention(query_size, memory_size, attention_size)
    if kind in ("general", "luong"):
        return MultiplicativeAttention(query_size, memory_size, "general")
    if kind == "dot":
        return MultiplicativeAttention(query_size, memory_size, "dot")
    raise ValueError(f"unknown attention {kind!r}; choose one of {ATTENTION_KINDS}")
