"""``RNNLanguageModel``: embedding -> stacked :class:`~recurrentkit.Recurrent` layers (any cell) -> output layer.

A plain ``nn.Module`` usable without Lightning. With ``dropout``, ``embedding_dropout``, ``weight_drop`` and
``tie_weights`` it is AWD-LSTM (Merity et al. 2018); without them it is the Zaremba et al. (2014) model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from ..cells.base import State
from ..nn.dropout import LockedDropout, embedding_dropout, weight_drop_
from ..nn.maxent import HashedNgramDirect
from ..nn.recurrent import Recurrent
from ..nn.softmax import build_output_layer


class _Dropout(nn.Module):
    """Standard (per-element, per-step) dropout, the locked variant's counterpart."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)


class RNNLanguageModel(nn.Module):
    """Word- or character-level recurrent language model.

    Args:
        vocab_size: number of token ids (ids sorted by frequency for ``output="adaptive"|"sampled"|"blackout"``).
        embedding_size: size of the input embedding.
        hidden_size: hidden units of each recurrent layer (see ``layer_sizes``).
        num_layers: stacked recurrent layers.
        cell: any registered cell name (``"lstm"``, ``"gru"``, ``"elman"``, ``"leaky"``, ...).
        cell_kwargs: extra kwargs for every cell (``{"init": "orthogonal"}``, ``{"peepholes": True}``, ...).
        layer_sizes: hidden size per layer, overriding ``hidden_size``. With ``tie_weights`` and no
            ``layer_sizes`` the last layer gets ``embedding_size`` units (as AWD-LSTM).
        dropout: dropout on the last layer's output (and between layers / on the input unless given separately).
        input_dropout: dropout on the embedded input (``None``: ``dropout``).
        hidden_dropout: dropout between recurrent layers (``None``: ``dropout``).
        embedding_dropout: probability of dropping a whole word type from the embedding matrix.
        weight_drop: DropConnect on every cell's ``weight_hh`` (one mask per forward pass).
        locked_dropout: use one dropout mask per sequence over all time steps (variational, Gal & Ghahramani
            2016); ``False`` samples a new mask per step (Zaremba et al. 2014).
        tie_weights: share the embedding matrix with the output layer (Press & Wolf 2017, Inan et al. 2017).
        output: ``"softmax"``, ``"adaptive"`` (needs ``cutoffs``), ``"sampled"`` or ``"blackout"`` (``num_samples``).
        init_range: if set, initialise every parameter uniformly in ``[-init_range, init_range]`` (Zaremba: 0.1,
            0.05, 0.04); otherwise the embedding is ``U(-0.1, 0.1)`` and the cells keep their own init.
        maxent_order: if >= 2, add hashed n-gram direct connections of that order to the output logits (RNNME,
            Mikolov et al. 2011; :class:`~recurrentkit.nn.maxent.HashedNgramDirect`); needs ``output="softmax"``.
        maxent_buckets: rows of the direct-connection table (its size is ``maxent_buckets * vocab_size``).

    ``forward(inputs [B, T], state=None, lengths=None) -> (hidden [B, T, H], state)``; ``loss(hidden, targets,
    inputs)`` is the mean NLL in nats; ``log_probs(hidden, inputs)`` returns ``[B, T, V]`` (``inputs`` are only
    needed with ``maxent_order``).
    """

    def __init__(self, vocab_size: int, embedding_size: int = 200, hidden_size: int = 200, num_layers: int = 2,
                 cell: str = "lstm", cell_kwargs: Mapping[str, Any] | None = None,
                 layer_sizes: Sequence[int] | None = None, dropout: float = 0.0, input_dropout: float | None = None,
                 hidden_dropout: float | None = None, embedding_dropout: float = 0.0, weight_drop: float = 0.0,
                 locked_dropout: bool = True, tie_weights: bool = False, output: str = "softmax",
                 cutoffs: Sequence[int] | None = None, num_samples: int = 8192,
                 init_range: float | None = None, maxent_order: int = 0, maxent_buckets: int = 2048) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        input_dropout = dropout if input_dropout is None else input_dropout
        hidden_dropout = dropout if hidden_dropout is None else hidden_dropout
        for name, p in (("dropout", dropout), ("input_dropout", input_dropout), ("hidden_dropout", hidden_dropout),
                        ("embedding_dropout", embedding_dropout), ("weight_drop", weight_drop)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        if layer_sizes is None:
            layer_sizes = [hidden_size] * num_layers
            if tie_weights:
                layer_sizes[-1] = embedding_size
        layer_sizes = [int(s) for s in layer_sizes]
        if len(layer_sizes) != num_layers:
            raise ValueError(f"layer_sizes has {len(layer_sizes)} entries for num_layers={num_layers}")
        self.vocab_size, self.embedding_size, self.num_layers = int(vocab_size), int(embedding_size), num_layers
        self.cell_name, self.layer_sizes = cell, layer_sizes
        self.embedding_dropout, self.weight_drop = float(embedding_dropout), float(weight_drop)

        self.embedding = nn.Embedding(vocab_size, embedding_size)
        cell_kwargs = dict(cell_kwargs or {})
        self.rnns = nn.ModuleList()
        size_in = embedding_size
        for size in layer_sizes:
            rnn = Recurrent(cell, size_in, size, **cell_kwargs)  # sequence-first inside: see forward
            self.rnns.append(rnn)
            size_in = rnn.output_size
        self.output_size = size_in
        def drop(p: float) -> nn.Module:
            return LockedDropout(p, batch_first=False) if locked_dropout else _Dropout(p)

        self.input_drop = drop(input_dropout)
        self.hidden_drop = drop(hidden_dropout)
        self.output_drop = drop(dropout)
        self.decoder = build_output_layer(output, self.output_size, vocab_size, cutoffs=cutoffs,
                                          num_samples=num_samples)
        self.output_kind = output
        self.maxent: HashedNgramDirect | None = None
        if maxent_order:
            if output != "softmax":
                raise ValueError(f"maxent_order needs output='softmax' (the direct scores join the full logits), "
                                 f"got output={output!r}")
            self.maxent = HashedNgramDirect(vocab_size, maxent_order, maxent_buckets)
        self.reset_parameters(init_range)
        if tie_weights:
            if not self.decoder.supports_tying:
                raise ValueError(f"tie_weights is not supported with output={output!r}; "
                                 "use 'softmax', 'sampled' or 'blackout'")
            if self.output_size != embedding_size:
                raise ValueError(f"tie_weights needs the last layer's output size ({self.output_size}) to equal "
                                 f"embedding_size ({embedding_size}); set layer_sizes=[..., {embedding_size}]")
            self.decoder.tie_weight(self.embedding.weight)
        self.tie_weights = tie_weights
        if weight_drop > 0:
            weight_drop_(self.rnns, weight_drop)

    def reset_parameters(self, init_range: float | None = None) -> None:
        if init_range is not None:
            for p in self.parameters():
                nn.init.uniform_(p, -init_range, init_range)
            if self.maxent is not None:
                nn.init.zeros_(self.maxent.table)  # the direct connections start at zero (RNNME)
        else:
            nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
            decoder = getattr(self.decoder, "decoder", None)
            if isinstance(decoder, nn.Linear):
                nn.init.uniform_(decoder.weight, -0.1, 0.1)
                if decoder.bias is not None:
                    nn.init.zeros_(decoder.bias)

    def initial_state(self, batch_size: int, *, device: torch.device | None = None,
                      dtype: torch.dtype | None = None) -> list[State]:
        """Zeros for every layer (a flat list, one cell state per layer)."""
        return [s for rnn in self.rnns for s in rnn.initial_state(batch_size, device=device, dtype=dtype)]

    def forward(self, inputs: Tensor, state: Sequence[State] | None = None, lengths: Tensor | None = None,
                return_raw: bool = False) -> tuple[Tensor, list[State]] | tuple[Tensor, list[State], Tensor]:
        """``inputs`` [B, T] ids -> ``(hidden [B, T, H], state)``; with ``return_raw`` also the last layer's
        output before dropout (for temporal activation regularisation)."""
        if inputs.dim() != 2:
            raise ValueError(f"inputs must be [B, T] token ids, got shape {tuple(inputs.shape)}")
        if inputs.is_floating_point():
            raise TypeError("inputs must be integer token ids")
        if state is not None and len(state) != self.num_layers:
            raise ValueError(f"state must hold {self.num_layers} cell states (one per layer), got {len(state)}")
        # the layers run sequence-first ([T, B, F], what the fused kernels read without a copy); the outputs are
        # returned as batch-first views of that memory
        x = embedding_dropout(self.embedding, inputs.t(), self.embedding_dropout, self.training)
        x = self.input_drop(x)
        new_state: list[State] = []
        # one DropConnect mask per forward pass: the parametrized weight_hh is computed once and reused
        cache = parametrize.cached() if self.weight_drop > 0 and self.training else contextlib.nullcontext()
        with cache:
            for index, rnn in enumerate(self.rnns):
                if index > 0:
                    x = self.hidden_drop(x)
                x, layer_state = rnn(x, None if state is None else [state[index]], lengths)
                new_state.extend(layer_state)
        raw = x.transpose(0, 1)
        hidden = self.output_drop(x).transpose(0, 1)
        return (hidden, new_state, raw) if return_raw else (hidden, new_state)

    def _direct_logits(self, hidden: Tensor, inputs: Tensor | None) -> Tensor:
        """Full-softmax logits ``[N, V]`` with the MaxEnt direct scores added."""
        if inputs is None or inputs.shape != hidden.shape[:-1]:
            raise ValueError(f"a model with maxent_order needs the inputs [B, T] = {tuple(hidden.shape[:-1])} "
                             f"that produced hidden, got {None if inputs is None else tuple(inputs.shape)}")
        flat = hidden.reshape(-1, hidden.shape[-1])
        return self.decoder.logits(flat) + self.maxent(inputs).reshape(flat.shape[0], -1)

    def loss(self, hidden: Tensor, targets: Tensor, inputs: Tensor | None = None) -> Tensor:
        """Mean negative log-likelihood (nats per token) of ``targets`` [B, T] given ``hidden`` [B, T, H] (and
        the ``inputs`` [B, T] when the model has MaxEnt direct connections)."""
        if targets.shape != hidden.shape[:-1]:
            raise ValueError(f"targets must have shape {tuple(hidden.shape[:-1])}, got {tuple(targets.shape)}")
        if self.maxent is not None:
            return F.cross_entropy(self._direct_logits(hidden, inputs), targets.reshape(-1))
        # the mean does not depend on the order: read hidden time-major, which is free for forward's output
        return self.decoder(hidden.transpose(0, 1).reshape(-1, hidden.shape[-1]), targets.t().reshape(-1))

    def log_probs(self, hidden: Tensor, inputs: Tensor | None = None) -> Tensor:
        """Full log-probabilities ``[..., V]`` over the vocabulary (``inputs`` as in :meth:`loss`)."""
        if self.maxent is not None:
            return F.log_softmax(self._direct_logits(hidden, inputs), dim=-1).view(*hidden.shape[:-1], -1)
        return self.decoder.log_prob(hidden.reshape(-1, hidden.shape[-1])).view(*hidden.shape[:-1], -1)

    def next_log_probs(self, hidden: Tensor, context: Tensor) -> Tensor:
        """Log-probabilities ``[B, V]`` of the next token from the last hidden state ``[B, H]`` and the ids read so
        far ``[B, T]`` (only their last ``maxent_order - 1`` matter, and only with MaxEnt connections)."""
        if self.maxent is None:
            return self.log_probs(hidden)
        window = context[:, -(self.maxent.order - 1):]
        direct = self.maxent(window)[:, -1]
        return F.log_softmax(self.decoder.logits(hidden) + direct, dim=-1)


__all__ = ["RNNLanguageModel"]
