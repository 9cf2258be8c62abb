"""Sequence tagger: word embedding (+ character-level word features) -> bidirectional
:class:`~recurrentkit.Recurrent` (any cell) -> per-token tag scores, optionally decoded by a linear-chain CRF."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..nn.crf import LinearChainCRF
from ..nn.recurrent import Recurrent

CHAR_ENCODERS = ("cnn", "recurrent")


def lengths_mask(lengths: Tensor | Sequence[int] | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """``[B, T]`` bool mask, True on the first ``lengths[b]`` steps of row ``b`` (all True when ``lengths`` is None)."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    lengths = torch.as_tensor(lengths, device=device)
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.unsqueeze(1)


class CharacterWordEncoder(nn.Module):
    """One vector per word from its characters: a CNN with max-pooling over positions (Ma & Hovy 2016) or a
    bidirectional :class:`~recurrentkit.Recurrent` whose final forward and backward outputs are concatenated
    (Ling et al. 2015, Plank et al. 2016).

    ``forward(chars [N, L]) -> [N, output_size]``; character id 0 is padding, a word's characters are a prefix of
    its row. Rows of padding only (padded tokens) give zeros.
    """

    def __init__(self, char_vocab_size: int, kind: str = "cnn", embedding_size: int = 32, hidden_size: int = 64,
                 kernel_size: int = 3, cell: Any = "lstm", cell_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if kind not in CHAR_ENCODERS:
            raise ValueError(f"char_encoder must be one of {CHAR_ENCODERS}, got {kind!r}")
        if char_vocab_size < 2:
            raise ValueError(f"char_vocab_size must be >= 2 (padding + characters), got {char_vocab_size}")
        self.kind = kind
        self.embedding = nn.Embedding(char_vocab_size, embedding_size, padding_idx=0)
        if kind == "cnn":
            if kernel_size < 1 or kernel_size % 2 == 0:
                raise ValueError(f"char kernel_size must be odd and positive, got {kernel_size}")
            self.conv = nn.Conv1d(embedding_size, hidden_size, kernel_size, padding=kernel_size // 2)
            self.output_size = hidden_size
        else:
            self.recurrent = Recurrent(cell, embedding_size, hidden_size, bidirectional=True, batch_first=True,
                                       **dict(cell_kwargs or {}))
            self.output_size = self.recurrent.output_size

    def forward(self, chars: Tensor) -> Tensor:
        if chars.dim() != 2:
            raise ValueError(f"chars must be [N, L] character ids, got shape {tuple(chars.shape)}")
        mask = chars != 0
        lengths = mask.sum(1)
        real = lengths > 0
        out = chars.new_zeros(chars.shape[0], self.output_size, dtype=self.embedding.weight.dtype)
        if not bool(real.any()):
            return out
        chars, mask, lengths = chars[real], mask[real], lengths[real]
        width = int(lengths.max())
        chars, mask = chars[:, :width], mask[:, :width]
        x = self.embedding(chars)  # [N, L, E]
        if self.kind == "cnn":
            h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # [N, L, H]
            h = h.masked_fill(~mask.unsqueeze(-1), float("-inf"))
            features = h.max(dim=1).values
        else:
            outputs, _ = self.recurrent(x, lengths=lengths.cpu())
            half = self.output_size // 2
            last = outputs.gather(1, (lengths - 1).view(-1, 1, 1).expand(-1, 1, half)).squeeze(1)
            features = torch.cat([last[:, :half], outputs[:, 0, half:]], dim=-1)
        return out.index_put((real.nonzero().squeeze(1),), features)


class RecurrentTagger(nn.Module):
    """``scores = Linear(dropout(BiRecurrent(dropout([E_w[word] ; chars(word)]))))``, one score vector per token.

    Args:
        vocab_size: rows of the word embedding.
        num_classes: number of tags.
        cell: any registered cell name (``"lstm"``, ``"gru"``, ``"elman"``, ``"leaky"``, ...) or a cell factory.
        embedding_size: word embedding dimension.
        hidden_size: hidden units per direction and layer.
        num_layers: stacked recurrent layers.
        bidirectional: read each sentence both ways (a tagger almost always should).
        dropout: on the word representation, between recurrent layers and before the output layer.
        word_dropout: during training, replace each word id by ``unk_idx`` with this probability, so the ``<unk>``
            embedding learns what rare and unseen words look like.
        char_vocab_size: characters (0 = padding); 0 disables character features.
        char_encoder: ``"cnn"`` or ``"recurrent"`` (a bidirectional ``Recurrent`` of ``char_cell``).
        char_embedding_size, char_hidden_size: character embedding and encoder width (per direction for
            ``"recurrent"``; filters for ``"cnn"``).
        char_kernel_size: CNN window (odd).
        char_cell: cell of the character encoder (default: ``cell``).
        crf: add a linear-chain CRF (:class:`~recurrentkit.nn.crf.LinearChainCRF`): the loss becomes the
            sequence negative log-likelihood and decoding becomes Viterbi.
        padding_idx, unk_idx: word ids of ``<pad>`` and ``<unk>``.
        embedding_init_std: initialise the word embedding from ``N(0, std²)`` (``None``: PyTorch's ``N(0, 1)``,
            which saturates the gates of a fresh LSTM and slows the first epochs).
        cell_kwargs: passed to every cell of the sentence encoder.

    ``forward(tokens [B, T], lengths [B] | None, chars [B, T, L] | None) -> scores [B, T, num_classes]``. Padded
    positions never change a sentence's scores. :meth:`loss` and :meth:`decode` take the scores and a mask.
    """

    def __init__(self, vocab_size: int, num_classes: int, cell: Any = "lstm", embedding_size: int = 100,
                 hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = True, dropout: float = 0.0,
                 word_dropout: float = 0.0, char_vocab_size: int = 0, char_encoder: str = "cnn",
                 char_embedding_size: int = 32, char_hidden_size: int = 64, char_kernel_size: int = 3,
                 char_cell: Any = None, crf: bool = False, padding_idx: int = 0, unk_idx: int = 1,
                 embedding_init_std: float | None = 0.1, cell_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if not 0.0 <= word_dropout < 1.0:
            raise ValueError(f"word_dropout must be in [0, 1), got {word_dropout}")
        self.vocab_size, self.num_classes = vocab_size, num_classes
        self.padding_idx, self.unk_idx, self.word_dropout = padding_idx, unk_idx, word_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)
        if embedding_init_std is not None:
            with torch.no_grad():
                nn.init.normal_(self.embedding.weight, 0.0, embedding_init_std)
                self.embedding.weight[padding_idx].zero_()
        features = embedding_size
        self.chars: CharacterWordEncoder | None = None
        if char_vocab_size:
            self.chars = CharacterWordEncoder(char_vocab_size, char_encoder, char_embedding_size, char_hidden_size,
                                              char_kernel_size, cell=char_cell or cell,
                                              cell_kwargs=None if char_cell else cell_kwargs)
            features += self.chars.output_size
        self.dropout = nn.Dropout(dropout)
        self.recurrent = Recurrent(cell, features, hidden_size, num_layers=num_layers, bidirectional=bidirectional,
                                   batch_first=True, dropout=dropout, **dict(cell_kwargs or {}))
        self.output = nn.Linear(self.recurrent.output_size, num_classes)
        self.crf = LinearChainCRF(num_classes) if crf else None

    def word_features(self, tokens: Tensor, chars: Tensor | None = None) -> Tensor:
        """``[B, T, F]``: the word embedding, with the character features of each word appended."""
        if self.training and self.word_dropout > 0:
            drop = torch.rand(tokens.shape, device=tokens.device) < self.word_dropout
            tokens = tokens.masked_fill(drop & (tokens != self.padding_idx), self.unk_idx)
        x = self.embedding(tokens)
        if self.chars is not None:
            if chars is None:
                raise ValueError("this tagger reads characters (char_vocab_size > 0): pass chars [B, T, L]")
            if chars.shape[:2] != tokens.shape:
                raise ValueError(f"chars must be [B, T, L] with [B, T] = {tuple(tokens.shape)}, got "
                                 f"{tuple(chars.shape)}")
            flat = chars.reshape(-1, chars.shape[-1])
            unique, inverse = torch.unique(flat, dim=0, return_inverse=True)  # each word type once per batch
            x = torch.cat([x, self.chars(unique)[inverse].view(*tokens.shape, -1)], dim=-1)
        return x

    def forward(self, tokens: Tensor, lengths: Tensor | Sequence[int] | None = None,
                chars: Tensor | None = None) -> Tensor:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [B, T] token ids, got shape {tuple(tokens.shape)}")
        x = self.dropout(self.word_features(tokens, chars))
        lengths = None if lengths is None else torch.as_tensor(lengths).cpu()
        outputs, _ = self.recurrent(x, lengths=lengths)
        return self.output(self.dropout(outputs))

    def loss(self, scores: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Mean per-token cross-entropy, or with a CRF the sequence negative log-likelihood summed over the batch
        and divided by its number of tokens (so both are per-token)."""
        if self.crf is not None:
            return self.crf(scores, tags, mask, reduction="token_mean")
        return F.cross_entropy(scores[mask], tags[mask])

    def decode(self, scores: Tensor, mask: Tensor, pad_tag: int = 0) -> Tensor:
        """Best tags ``[B, T]`` (Viterbi with a CRF, else the per-token argmax); padded positions get ``pad_tag``."""
        if self.crf is not None:
            return self.crf.decode(scores, mask, pad_tag=pad_tag)[0]
        return scores.argmax(-1).masked_fill(~mask, pad_tag)
