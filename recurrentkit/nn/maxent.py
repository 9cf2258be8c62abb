"""Hashed n-gram direct connections ("MaxEnt features") for a recurrent language model (Mikolov et al. 2011, RNNME).

Besides the recurrent network, the output softmax gets a score for every word ``w`` from each of the last ``n``
input words (``n = 1 .. order - 1``), looked up in a hashed table, as a maximum-entropy n-gram model would:

    logits_t(w) = W h_t + b + sum_{n=1}^{order-1} D[bucket_n(x_{t-n+1..t}), w]

``bucket_n`` hashes the ``n``-word history into one of ``num_buckets`` rows (one table shared by all orders, with
an order-dependent salt), so the table is ``[num_buckets, V]`` and the direct weights of histories that collide are
shared, as in RNNME's hashed direct connections. The table starts at zero (the model starts as the plain RNN).
Histories are taken inside the current ``[B, T]`` window: the first ``n - 1`` positions of a window have no
``n``-word history and use the lower orders only.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

_PRIME = 1_000_003
_MASK = (1 << 61) - 1  # keep the running hash in int64 range


class HashedNgramDirect(nn.Module):
    """Direct n-gram scores ``[B, T, V]`` from the input ids ``[B, T]`` (see the module docstring).

    Args:
        vocab_size: number of word ids ``V``.
        order: n-gram order; histories of ``1 .. order - 1`` words are used (``order=4``: 1-, 2- and 3-word).
        num_buckets: rows of the hashed table (parameters: ``num_buckets * V``).
    """

    def __init__(self, vocab_size: int, order: int = 4, num_buckets: int = 2048) -> None:
        super().__init__()
        if order < 2:
            raise ValueError(f"order must be >= 2 (a history of at least one word), got {order}")
        if num_buckets < 1 or vocab_size < 1:
            raise ValueError(f"num_buckets and vocab_size must be >= 1, got {num_buckets} and {vocab_size}")
        self.vocab_size, self.order, self.num_buckets = int(vocab_size), int(order), int(num_buckets)
        # the extra last row is the padding row for histories that reach before the window: never used, never trained
        self.table = nn.Parameter(torch.zeros(num_buckets + 1, vocab_size))

    def buckets(self, inputs: Tensor) -> Tensor:
        """``[B, T, order - 1]`` table rows of the 1..order-1 word histories ending at each position."""
        if inputs.dim() != 2 or inputs.is_floating_point():
            raise ValueError(f"inputs must be [B, T] integer ids, got {inputs.dtype} of shape {tuple(inputs.shape)}")
        ids = inputs.long() + 1
        running = torch.zeros_like(ids)
        rows = []
        for n in range(1, self.order):
            shifted = F.pad(ids, (n - 1, 0))[:, : ids.shape[1]]  # x_{t-n+1}, 0 before the window
            running = (running * _PRIME + shifted) & _MASK
            bucket = (running * 31 + n) % self.num_buckets
            valid = torch.arange(ids.shape[1], device=ids.device) >= n - 1
            rows.append(torch.where(valid, bucket, torch.full_like(bucket, self.num_buckets)))
        return torch.stack(rows, dim=-1)

    def forward(self, inputs: Tensor) -> Tensor:
        rows = self.buckets(inputs)
        flat = rows.reshape(-1, self.order - 1)
        scores = F.embedding_bag(flat, self.table, mode="sum", padding_idx=self.num_buckets)
        return scores.view(*inputs.shape, self.vocab_size)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}, order={self.order}, num_buckets={self.num_buckets}"


__all__ = ["HashedNgramDirect"]
