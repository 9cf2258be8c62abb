"""Encoder-decoder (sequence-to-sequence) model with any registered cell on either side.

Encoder (Sutskever et al. 2014; Bahdanau et al. 2015): ``h_1..h_S = Recurrent(E_src x)``, optionally bidirectional
and stacked. The decoder starts from a bridge of the encoder's final top-layer state, ``s_0 = tanh(W_b h_final)``
(one bridge per decoder layer and state field, so encoder and decoder may use different cells), then for each target
position ``t`` (teacher forcing: ``y_{t-1}`` is the reference token; at inference the previous prediction)::

    o_t, s_t = cell(E_tgt y_{t-1} [; h̃_{t-1}], s_{t-1})          # any registered cell, stacked with dropout
    c_t, α_t = attention(o_t, h_{1..S}, source mask)             # see recurrentkit.nn.attention
    h̃_t      = tanh(W_c [o_t ; c_t])                             # Luong et al. (2015) attentional state
    p(y_t | y_<t, x) = softmax(W_o h̃_t)

With ``attention="none"`` (Sutskever et al. 2014) ``h̃_t = o_t`` and the source reaches the decoder only through
``s_0``. With ``input_feeding=True`` (Luong et al. 2015) ``h̃_{t-1}`` is concatenated to the decoder input, so
teacher forcing runs step by step; without it the whole target runs through :class:`~recurrentkit.Recurrent` (the
fused kernel where the cell has one) and all steps are attended to in one batched product.

Decoding: :meth:`Seq2Seq.greedy` and batched :meth:`Seq2Seq.beam_search` (length-normalised scores
``log p(y|x) / |y|^α``, hypotheses end at ``</s>``, the search stops when every beam has ended or at
``max_length``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..cells.base import State
from ..nn.attention import build_attention
from ..nn.recurrent import Recurrent

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "EncoderMemory", "Seq2Seq", "strip_special"]

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # the ids recurrentkit's translation vocabularies give the specials


class EncoderMemory(NamedTuple):
    """What the decoder reads: encoder outputs [B, S, D], source mask [B, S] (True at real tokens), the
    attention's precomputed keys (or ``None``) and the decoder's initial state (one cell state per layer)."""

    outputs: Tensor
    mask: Tensor
    keys: Tensor | None
    initial_state: list[State]

    def index_select(self, index: Tensor) -> EncoderMemory:
        """Rows ``index`` of every tensor (beam expansion and reordering)."""
        return EncoderMemory(self.outputs.index_select(0, index), self.mask.index_select(0, index),
                             None if self.keys is None else self.keys.index_select(0, index),
                             [_select_state(s, index) for s in self.initial_state])


class DecoderState(NamedTuple):
    """The decoder's recurrent state between steps: one cell state per layer, and the previous attentional
    vector ``h̃_{t-1}`` (``None`` without input feeding)."""

    cells: list[State]
    feed: Tensor | None

    def index_select(self, index: Tensor) -> DecoderState:
        return DecoderState([_select_state(s, index) for s in self.cells],
                            None if self.feed is None else self.feed.index_select(0, index))


def _select_state(state: State, index: Tensor) -> State:
    return type(state)(*(t.index_select(0, index) for t in state))


def strip_special(ids: Sequence[int], eos_id: int = EOS_ID, pad_id: int = PAD_ID, bos_id: int = BOS_ID) -> list[int]:
    """Token ids up to (not including) the first ``eos_id``, without padding or ``bos_id``."""
    out = []
    for i in ids:
        i = int(i)
        if i == eos_id:
            break
        if i not in (pad_id, bos_id):
            out.append(i)
    return out


class Seq2Seq(nn.Module):
    """Recurrent encoder-decoder with optional attention.

    Args:
        src_vocab_size, tgt_vocab_size: embedding rows of the source and target side.
        cell: the encoder's cell: a registered name (``"gru"``, ``"lstm"``, ...), an import path or a factory.
        embedding_size: embedding dimension of both sides.
        hidden_size: hidden units per direction and layer of the encoder.
        num_layers: encoder layers.
        bidirectional: bidirectional encoder (each direction ``hidden_size`` units).
        decoder_cell: the decoder's cell (default: ``cell``).
        decoder_hidden_size: decoder hidden units (default: ``hidden_size``).
        decoder_layers: decoder layers (default: ``num_layers``).
        attention: ``"additive"`` (Bahdanau), ``"general"`` or ``"dot"`` (Luong), or ``"none"`` (Sutskever).
        attention_size: hidden units of additive attention (default: the decoder's output size).
        input_feeding: feed the previous attentional vector to the decoder (Luong et al. 2015).
        dropout: on embeddings, between layers and before the output layer.
        tie_embeddings: share the target embedding with the output layer (needs ``embedding_size`` equal to the
            attentional vector size, i.e. ``decoder_hidden_size``).
        cell_kwargs: passed to every encoder cell; ``decoder_cell_kwargs`` (default: ``cell_kwargs``) to every
            decoder cell.
        pad_id, bos_id, eos_id: special token ids (recurrentkit's vocabularies use 0, 2, 3).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, cell: Any = "gru", embedding_size: int = 256,
                 hidden_size: int = 256, num_layers: int = 1, bidirectional: bool = True,
                 decoder_cell: Any = None, decoder_hidden_size: int | None = None, decoder_layers: int | None = None,
                 attention: str = "additive", attention_size: int | None = None, input_feeding: bool = False,
                 dropout: float = 0.0, tie_embeddings: bool = False, cell_kwargs: Mapping[str, Any] | None = None,
                 decoder_cell_kwargs: Mapping[str, Any] | None = None, pad_id: int = PAD_ID, bos_id: int = BOS_ID,
                 eos_id: int = EOS_ID) -> None:
        super().__init__()
        for name, value in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size)):
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        decoder_cell = cell if decoder_cell is None else decoder_cell
        decoder_hidden_size = decoder_hidden_size or hidden_size
        decoder_layers = decoder_layers or num_layers
        decoder_cell_kwargs = cell_kwargs if decoder_cell_kwargs is None else decoder_cell_kwargs
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.dropout_p = dropout
        self.dropout = nn.Dropout(dropout)
        self.src_embedding = nn.Embedding(src_vocab_size, embedding_size, padding_idx=pad_id)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, embedding_size, padding_idx=pad_id)
        self.encoder = Recurrent(cell, embedding_size, hidden_size, num_layers=num_layers,
                                 bidirectional=bidirectional, batch_first=True, dropout=dropout,
                                 **dict(cell_kwargs or {}))
        memory_size = self.encoder.output_size
        self.attention_kind = attention or "none"
        self.input_feeding = bool(input_feeding) and self.attention_kind != "none"
        feed_size = decoder_hidden_size if self.input_feeding else 0
        self.decoder = Recurrent(decoder_cell, embedding_size + feed_size, decoder_hidden_size,
                                 num_layers=decoder_layers, batch_first=True, dropout=dropout,
                                 **dict(decoder_cell_kwargs or {}))
        query_size = self.decoder.output_size
        self.attention = build_attention(self.attention_kind, query_size, memory_size, attention_size)
        if self.attention is not None:
            self.combine = nn.Linear(query_size + memory_size, decoder_hidden_size, bias=False)
            readout_size = decoder_hidden_size
        else:
            self.combine = None
            readout_size = query_size
        self.readout_size = readout_size
        top = self.encoder.layers[-1]
        bridge_in = sum(c.state_size[0] for c in top)
        self.bridge = nn.ModuleList(nn.ModuleList(nn.Linear(bridge_in, size) for size in c.state_size)
                                    for c in self.decoder.cells())
        self.output = nn.Linear(readout_size, tgt_vocab_size)
        if tie_embeddings:
            if readout_size != embedding_size:
                raise ValueError(f"tie_embeddings needs embedding_size == the readout size ({readout_size}), got "
                                 f"{embedding_size}")
            self.output.weight = self.tgt_embedding.weight

    # --- encoder -----------------------------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor | Sequence[int] | None = None) -> EncoderMemory:
        """Run the encoder over ``src`` [B, S] (padded with ``pad_id`` after ``src_lengths``)."""
        if src.dim() != 2:
            raise ValueError(f"src must be [B, S] token ids, got shape {tuple(src.shape)}")
        batch, steps = src.shape
        if src_lengths is None:
            src_lengths = torch.full((batch,), steps, dtype=torch.long)
        src_lengths = torch.as_tensor(src_lengths).long()
        mask = torch.arange(steps, device=src.device).unsqueeze(0) < src_lengths.to(src.device).unsqueeze(1)
        outputs, final = self.encoder(self.dropout(self.src_embedding(src)), lengths=src_lengths.cpu())
        top = final[-self.encoder.num_directions:]
        summary = torch.cat([s[0] for s in top], dim=-1)
        initial = [cell.state_type(*(torch.tanh(layer(summary)) for layer in bridges))
                   for cell, bridges in zip(self.decoder.cells(), self.bridge)]
        keys = self.attention.prepare(outputs) if self.attention is not None else None
        return EncoderMemory(outputs, mask, keys, initial)

    # --- decoder -----------------------------------------------------------------------------------------------
    def initial_decoder_state(self, memory: EncoderMemory) -> DecoderState:
        feed = None
        if self.input_feeding:
            feed = memory.outputs.new_zeros(memory.outputs.shape[0], self.readout_size)
        return DecoderState(list(memory.initial_state), feed)

    def _readout(self, out: Tensor, memory: EncoderMemory) -> tuple[Tensor, Tensor | None]:
        """``(h̃, attention weights)`` from decoder outputs [B, (T,) D]."""
        if self.attention is None:
            return out, None
        context, weights = self.attention(out, memory.outputs, memory.mask, memory.keys)
        return torch.tanh(self.combine(torch.cat([out, context], dim=-1))), weights

    def decode_step(self, prev_tokens: Tensor, state: DecoderState, memory: EncoderMemory
                    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step: ``prev_tokens`` [B] -> ``(logits [B, V], new state, attention weights [B, S])``."""
        x = self.dropout(self.tgt_embedding(prev_tokens))
        if self.input_feeding:
            x = torch.cat([x, state.feed], dim=-1)
        new_cells = []
        for index, (cells, cell_state) in enumerate(zip(self.decoder.layers, state.cells)):
            if index > 0 and self.dropout_p > 0:
                x = F.dropout(x, self.dropout_p, self.training)
            cell = cells[0]
            x, cell_state = cell.step(cell.project_input(x.unsqueeze(0)).squeeze(0), cell_state)
            new_cells.append(cell_state)
        readout, weights = self._readout(x, memory)
        logits = self.output(self.dropout(readout))
        return logits, DecoderState(new_cells, readout if self.input_feeding else None), weights

    def decode(self, tgt_in: Tensor, memory: EncoderMemory, return_attention: bool = False
               ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Teacher-forced logits [B, T, V] for decoder inputs ``tgt_in`` [B, T] (``<s> y_1 .. y_{T-1}``)."""
        if tgt_in.dim() != 2:
            raise ValueError(f"tgt_in must be [B, T] token ids, got shape {tuple(tgt_in.shape)}")
        if self.input_feeding:
            state = self.initial_decoder_state(memory)
            logits, weights = [], []
            for prev in tgt_in.unbind(1):
                step_logits, state, step_weights = self.decode_step(prev, state, memory)
                logits.append(step_logits)
                weights.append(step_weights)
            out = torch.stack(logits, dim=1)
            attn = torch.stack(weights, dim=1) if weights[0] is not None else None
        else:
            outputs, _ = self.decoder(self.dropout(self.tgt_embedding(tgt_in)), state=memory.initial_state)
            readout, attn = self._readout(outputs, memory)
            out = self.output(self.dropout(readout))
        return (out, attn) if return_attention else out

    def forward(self, src: Tensor, src_lengths: Tensor | Sequence[int] | None, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: logits [B, T, V] of ``p(y_t | y_<t, x)``."""
        return self.decode(tgt_in, self.encode(src, src_lengths))

    # --- inference -------------------------------------------------------------------------------------------
    @staticmethod
    def _length_limits(src_lengths: Tensor, max_length: int | None) -> Tensor:
        """Most tokens per row: ``2 * source length + 10``, capped by ``max_length``; per row, so that a sentence
        gets the same translation in any batch."""
        limits = 2 * src_lengths + 10
        return limits if max_length is None else limits.clamp_max(int(max_length))

    @torch.no_grad()
    def greedy(self, src: Tensor, src_lengths: Tensor | Sequence[int] | None = None, max_length: int | None = None
               ) -> list[list[int]]:
        """Greedy decoding: for each source row, the argmax tokens up to ``</s>`` (excluded), at most
        ``min(2 * source length + 10, max_length)`` tokens."""
        memory = self.encode(src, src_lengths)
        limits = self._length_limits(memory.mask.sum(1), max_length)
        batch = src.shape[0]
        state = self.initial_decoder_state(memory)
        prev = torch.full((batch,), self.bos_id, dtype=torch.long, device=src.device)
        done = torch.zeros(batch, dtype=torch.bool, device=src.device)
        steps = []
        for step in range(int(limits.max())):
            logits, state, _ = self.decode_step(prev, state, memory)
            prev = logits.argmax(-1).masked_fill(done, self.pad_id)
            steps.append(prev)
            done = done | (prev == self.eos_id) | (limits <= step + 1)
            if bool(done.all()):
                break
        tokens = torch.stack(steps, dim=1).tolist()
        return [strip_special(row, self.eos_id, self.pad_id, self.bos_id) for row in tokens]

    @torch.no_grad()
    def beam_search(self, src: Tensor, src_lengths: Tensor | Sequence[int] | None = None, beam_size: int = 5,
                    length_penalty: float = 1.0, max_length: int | None = None) -> list[list[int]]:
        """Batched beam search; returns the best hypothesis per source row (``</s>`` excluded).

        Candidates are ranked by ``log p(y|x) / |y|^length_penalty`` (``|y|`` counts ``</s>``; 0 disables the
        normalisation). A beam that emitted ``</s>`` keeps its score and length and competes with the open ones;
        the search stops when every beam of every row has ended; a row's hypotheses end after at most
        ``min(2 * source length + 10, max_length)`` tokens. ``beam_size=1`` is greedy decoding.
        """
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        memory = self.encode(src, src_lengths)
        limits = self._length_limits(memory.mask.sum(1), max_length).unsqueeze(1)
        batch, k, device = src.shape[0], beam_size, src.device
        expand = torch.arange(batch, device=device).repeat_interleave(k)
        memory = memory.index_select(expand)
        state = self.initial_decoder_state(memory)
        prev = torch.full((batch * k,), self.bos_id, dtype=torch.long, device=device)
        scores = torch.full((batch, k), float("-inf"), device=device)
        scores[:, 0] = 0.0
        lengths = torch.zeros(batch, k, device=device)
        finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
        history = torch.empty(batch * k, 0, dtype=torch.long, device=device)
        offsets = (torch.arange(batch, device=device) * k).unsqueeze(1)
        for step in range(int(limits.max())):
            logits, state, _ = self.decode_step(prev, state, memory)
            vocab = logits.shape[-1]
            logp = F.log_softmax(logits.float(), dim=-1).view(batch, k, vocab)
            ended = torch.full((vocab,), float("-inf"), device=device)
            ended[self.pad_id] = 0.0  # an ended beam continues with padding only, at no cost
            logp = torch.where(finished.unsqueeze(-1), ended, logp)
            candidates = (scores.unsqueeze(-1) + logp).view(batch, -1)
            cand_len = torch.where(finished, lengths, torch.full_like(lengths, step + 1))
            cand_len = cand_len.unsqueeze(-1).expand(batch, k, vocab).reshape(batch, -1)
            ranked = candidates / cand_len.pow(length_penalty) if length_penalty else candidates
            _, index = ranked.topk(k, dim=1)
            beam, token = index // vocab, index % vocab
            scores, lengths = candidates.gather(1, index), cand_len.gather(1, index)
            finished = finished.gather(1, beam) | (token == self.eos_id) | (limits <= step + 1)
            flat = (beam + offsets).view(-1)
            history = torch.cat([history.index_select(0, flat), token.view(-1, 1)], dim=1)
            state = state.index_select(flat)
            prev = token.view(-1)
            if bool(finished.all()):
                break
        final = scores / lengths.clamp_min(1).pow(length_penalty) if length_penalty else scores
        best = final.argmax(1) + offsets.squeeze(1)
        rows = history.index_select(0, best).tolist()
        return [strip_special(row, self.eos_id, self.pad_id, self.bos_id) for row in rows]

    def translate(self, src: Tensor, src_lengths: Tensor | Sequence[int] | None = None, beam_size: int = 1,
                  length_penalty: float = 1.0, max_length: int | None = None) -> list[list[int]]:
        """Greedy decoding for ``beam_size=1``, else :meth:`beam_search`."""
        if beam_size == 1:
            return self.greedy(src, src_lengths, max_length)
        return self.beam_search(src, src_lengths, beam_size, length_penalty, max_length)
