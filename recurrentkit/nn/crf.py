"""Linear-chain conditional random field: forward-algorithm log-partition, sequence score, Viterbi decoding.

For emissions ``E [T, C]`` (per-token tag scores), transitions ``A [C, C]`` (``A[i, j]``: tag ``i`` followed by
tag ``j``), start scores ``s [C]`` and end scores ``e [C]``, the score of a tag sequence ``y_1..y_n`` is

    score(y) = s[y_1] + sum_{t=1}^{n} E[t, y_t] + sum_{t=2}^{n} A[y_{t-1}, y_t] + e[y_n]

and ``p(y | x) = exp(score(y)) / Z`` with ``log Z = logsumexp_y score(y)``, computed by the forward algorithm:

    alpha_1(j) = s[j] + E[1, j]
    alpha_t(j) = E[t, j] + logsumexp_i (alpha_{t-1}(i) + A[i, j])
    log Z      = logsumexp_j (alpha_n(j) + e[j])

Viterbi replaces logsumexp by max (and keeps the argmax as a back-pointer). Batches are padded at the end: ``mask
[B, T]`` is True on real tokens, a prefix of each row (every row has at least one token); padded steps leave
``alpha`` unchanged, so a padded batch gives each row's unpadded result.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LinearChainCRF"]


class LinearChainCRF(nn.Module):
    """A linear-chain CRF over ``num_tags`` tags (Lafferty et al. 2001; as the output layer of a bi-LSTM tagger,
    Huang et al. 2015, Lample et al. 2016).

    Args:
        num_tags: number of tags ``C``.

    Parameters: ``transitions [C, C]``, ``start_transitions [C]``, ``end_transitions [C]``, initialised at zero
    (so an untrained CRF decodes as the per-token argmax).

    Shapes are batch-first: ``emissions [B, T, C]``, ``tags [B, T]`` (long), ``mask [B, T]`` (bool, a prefix of
    each row; ``None``: no padding).
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))
        self.start_transitions = nn.Parameter(torch.zeros(num_tags))
        self.end_transitions = nn.Parameter(torch.zeros(num_tags))

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # --- checks ---------------------------------------------------------------------------------------------------
    def _check(self, emissions: Tensor, mask: Tensor | None, tags: Tensor | None = None) -> Tensor:
        if emissions.dim() != 3 or emissions.shape[-1] != self.num_tags:
            raise ValueError(f"emissions must be [B, T, {self.num_tags}], got shape {tuple(emissions.shape)}")
        batch, steps, _ = emissions.shape
        if steps < 1:
            raise ValueError("emissions have no time steps")
        if tags is not None and tags.shape != (batch, steps):
            raise ValueError(f"tags must be [B, T] = {(batch, steps)}, got shape {tuple(tags.shape)}")
        if mask is None:
            return torch.ones(batch, steps, dtype=torch.bool, device=emissions.device)
        if mask.shape != (batch, steps):
            raise ValueError(f"mask must be [B, T] = {(batch, steps)}, got shape {tuple(mask.shape)}")
        mask = mask.bool()
        if not bool(mask[:, 0].all()):
            raise ValueError("every sequence needs at least one token: mask[:, 0] must be all True")
        return mask

    # --- scores ---------------------------------------------------------------------------------------------------
    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """``score(y)`` of the given tag sequences, ``[B]`` (padded positions of ``tags`` may hold anything)."""
        mask = self._check(emissions, mask, tags)
        tags = tags.masked_fill(~mask, 0)
        maskf = mask.to(emissions.dtype)
        emit = emissions.gather(-1, tags.unsqueeze(-1)).squeeze(-1)  # [B, T]
        total = self.start_transitions[tags[:, 0]] + (emit * maskf).sum(1)
        if tags.shape[1] > 1:
            trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # [B, T-1]
            total = total + (trans * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.long().sum(1) - 1).unsqueeze(1)).squeeze(1)
        return total + self.end_transitions[last]

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """``log Z`` of every sequence, ``[B]`` (forward algorithm)."""
        mask = self._check(emissions, mask)
        alpha = self.start_transitions + emissions[:, 0]  # [B, C]
        for t in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t].unsqueeze(1), step, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None, reduction: str = "sum") -> Tensor:
        """Negative log-likelihood ``log Z - score(y)``: ``reduction`` ``"sum"``, ``"mean"`` (over sequences),
        ``"token_mean"`` (over real tokens) or ``"none"`` (``[B]``)."""
        mask = self._check(emissions, mask, tags)
        nll = self.log_partition(emissions, mask) - self.score(emissions, tags, mask)
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll.mean()
        if reduction == "token_mean":
            return nll.sum() / mask.sum()
        raise ValueError(f"reduction must be 'none', 'sum', 'mean' or 'token_mean', got {reduction!r}")

    # --- decoding -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor | None = None, pad_tag: int = 0) -> tuple[Tensor, Tensor]:
        """Viterbi: the best tag sequence of every row, ``(tags [B, T], scores [B])``; padded positions get
        ``pad_tag``. ``scores`` equal ``score(emissions, tags, mask)``."""
        mask = self._check(emissions, mask)
        batch, steps, num_tags = emissions.shape
        delta = self.start_transitions + emissions[:, 0]
        identity = torch.arange(num_tags, device=emissions.device).expand(batch, num_tags)
        pointers = []
        for t in range(1, steps):
            best, arg = (delta.unsqueeze(2) + self.transitions).max(dim=1)  # over the previous tag
            keep = mask[:, t].unsqueeze(1)
            delta = torch.where(keep, best + emissions[:, t], delta)
            pointers.append(torch.where(keep, arg, identity))  # padded steps point to themselves
        scores, last = (delta + self.end_transitions).max(dim=1)
        path = [last]
        for arg in reversed(pointers):
            last = arg.gather(1, last.unsqueeze(1)).squeeze(1)
            path.append(last)
        tags = torch.stack(path[::-1], dim=1)
        return tags.masked_fill(~mask, pad_tag), scores
