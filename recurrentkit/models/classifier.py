"""Many-to-one sequence classifier: embedding -> :class:`~recurrentkit.Recurrent` (any cell) -> pooling -> MLP."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..nn.embedding import PretrainedReport, init_embedding_
from ..nn.pooling import SequencePooling
from ..nn.recurrent import Recurrent


class RecurrentClassifier(nn.Module):
    """``logits = MLP(pool(Recurrent(dropout(E[tokens])), lengths))``.

    Args:
        vocab_size: rows of the embedding.
        num_classes: outputs of the head.
        cell: any registered cell name (``"lstm"``, ``"gru"``, ``"esn"``, ...) or a cell factory.
        embedding_size: embedding dimension (= the recurrent layer's input size).
        hidden_size: hidden units per direction and layer.
        num_layers: stacked recurrent layers.
        bidirectional: add a backward direction to every layer.
        pooling: ``"last"``, ``"mean"``, ``"max"`` or ``"attention"`` (see :mod:`recurrentkit.nn.pooling`).
        dropout: dropout on the embeddings, between recurrent layers, and before each head layer.
        head_hidden_size: width of the MLP's hidden layer; ``None`` or 0 gives a single linear layer.
        padding_idx: token id of padding (its embedding row stays zero).
        freeze_embedding: do not train the embedding (e.g. with pretrained vectors).
        embedding_init_std: initialise the embedding from ``N(0, std²)`` instead of PyTorch's ``N(0, 1)``; a
            small std lets the rows of rare words move further relative to their random start.
        cell_kwargs: passed to every cell (``{"spectral_radius": 0.9}`` for ``"esn"``, ...).

    ``forward(tokens [B, T], lengths [B] | None) -> logits [B, num_classes]``. Padded positions never change a
    sample's logits. With ``cell="esn"`` the reservoir has no parameters, so only the embedding and head train.
    """

    def __init__(self, vocab_size: int, num_classes: int, cell: Any = "lstm", embedding_size: int = 128,
                 hidden_size: int = 128, num_layers: int = 1, bidirectional: bool = False, pooling: str = "last",
                 dropout: float = 0.0, head_hidden_size: int | None = None, padding_idx: int | None = 0,
                 freeze_embedding: bool = False, embedding_init_std: float | None = None,
                 cell_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if vocab_size < 1:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.vocab_size, self.num_classes = vocab_size, num_classes
        self.embedding = nn.Embedding(vocab_size, embedding_size, padding_idx=padding_idx)
        if embedding_init_std is not None:
            with torch.no_grad():
                nn.init.normal_(self.embedding.weight, 0.0, embedding_init_std)
                if padding_idx is not None:
                    self.embedding.weight[padding_idx].zero_()
        if freeze_embedding:
            self.embedding.weight.requires_grad_(False)
        self.dropout = nn.Dropout(dropout)
        self.recurrent = Recurrent(cell, embedding_size, hidden_size, num_layers=num_layers,
                                   bidirectional=bidirectional, batch_first=True, dropout=dropout,
                                   **dict(cell_kwargs or {}))
        features = self.recurrent.output_size
        self.pooling = SequencePooling(pooling, features, num_directions=2 if bidirectional else 1)
        layers: list[nn.Module] = []
        if head_hidden_size:
            layers += [nn.Dropout(dropout), nn.Linear(features, head_hidden_size), nn.Tanh()]
            features = head_hidden_size
        layers += [nn.Dropout(dropout), nn.Linear(features, num_classes)]
        self.head = nn.Sequential(*layers)

    def encode(self, tokens: Tensor, lengths: Tensor | Sequence[int] | None = None) -> Tensor:
        """The pooled sentence vector ``[B, F]`` (before the head)."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [B, T] token ids, got shape {tuple(tokens.shape)}")
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=tokens.device)
        x = self.dropout(self.embedding(tokens))
        outputs, _ = self.recurrent(x, lengths=None if lengths is None else lengths.cpu())
        return self.pooling(outputs, lengths)

    def forward(self, tokens: Tensor, lengths: Tensor | Sequence[int] | None = None) -> Tensor:
        return self.head(self.encode(tokens, lengths))

    def load_pretrained_embeddings(self, path: str | os.PathLike, words: Sequence[str], lower: bool = False,
                                   skip: Sequence[str] = ("<pad>", "<unk>"), freeze: bool = False
                                   ) -> PretrainedReport:
        """Initialise the embedding rows of ``words`` (index -> word) from a word2vec/GloVe text file."""
        return init_embedding_(self.embedding, path, words, lower=lower, skip=skip, freeze=freeze)
