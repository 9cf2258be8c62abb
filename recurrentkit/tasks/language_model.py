"""``LanguageModelTask``: trains an :class:`~recurrentkit.models.lm.RNNLanguageModel` with truncated BPTT.

Truncated BPTT under Lightning 2.x: batches are contiguous ``[B, T]`` windows of ``B`` token streams. The final
hidden state of one batch is detached and used as the initial state of the next, so gradients flow ``T`` steps back
while the state sees the whole stream. The state is reset at the start of every train / validation / test epoch and
each stage has its own. Optimization stays automatic, so Trainer-level gradient clipping, accumulation and precision
keep working.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import Tensor
from torchmetrics import MeanMetric

from ..cells.base import detach_state
from ..models.lm import RNNLanguageModel
from .base import STAGES, Task, load_text_extras, sgd, text_extras


class LanguageModelTask(Task):
    """Language modelling with any registered cell.

    The model's arguments (``cell``, ``embedding_size``, ``hidden_size``, ``num_layers``, dropouts, ``output``, ...)
    are those of :class:`~recurrentkit.models.lm.RNNLanguageModel`, passed through ``**model_kwargs``; the task
    adds only what training needs.

    Args:
        vocab_size: number of token ids (the CLI links it from the data module).
        optimizer: a callable ``params -> Optimizer`` (from YAML: ``class_path: torch.optim.SGD`` + ``init_args``);
            default SGD with learning rate 1.
        lr_scheduler: a callable ``optimizer -> scheduler`` or ``None``; stepped every epoch. A ``ReduceLROnPlateau``
            watches ``val/ppl`` unless it names its own ``monitor``.
        ar: activation regularisation ``ar * mean(dropout(h_t)^2)`` on the last layer (AWD-LSTM: 2).
        tar: temporal activation regularisation ``tar * mean((h_t - h_{t-1})^2)`` on the raw last layer (AWD: 1).
        char_level: the tokens are characters: also report bits per character ``bpc = loss / ln 2``.
        **model_kwargs: the arguments of :class:`~recurrentkit.models.lm.RNNLanguageModel`.

    Logged: ``train/loss`` (NLL, nats/token, without AR/TAR), ``train/tokens_per_s``, ``val/loss``, ``val/ppl``,
    ``test/loss``, ``test/ppl`` (and ``val/bpc``, ``test/bpc`` when ``char_level``). Validation and test losses are
    token-weighted means over the whole stream; ``ppl = exp(loss)``.
    """

    monitor = "val/ppl"

    def __init__(self, vocab_size: int, optimizer: OptimizerCallable = sgd,
                 lr_scheduler: LRSchedulerCallable | None = None, ar: float = 0.0, tar: float = 0.0,
                 char_level: bool = False, **model_kwargs: Any) -> None:
        super().__init__(optimizer, lr_scheduler)
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        self.model = RNNLanguageModel(vocab_size, **model_kwargs)
        if ar < 0 or tar < 0:
            raise ValueError(f"ar and tar must be >= 0, got ar={ar}, tar={tar}")
        self.ar, self.tar, self.char_level = float(ar), float(tar), bool(char_level)
        # NaN is kept, never dropped: a partly-NaN evaluation must not report a finite perplexity over the rest
        self.train_nll = MeanMetric(nan_strategy="disable")
        self.val_nll = MeanMetric(nan_strategy="disable")
        self.test_nll = MeanMetric(nan_strategy="disable")
        self.states: dict[str, Any] = dict.fromkeys(STAGES)
        self.vocab = None
        self.tokenizer = None
        self._tokens_seen = 0
        self._epoch_start = 0.0
        self._in_train_epoch = False
        self._resume_epoch: int | None = None

    # --- vocabulary (for generation) ---------------------------------------------------------------------------
    def attach_vocabulary(self, vocab: Any, tokenizer: Any) -> None:
        """Give the task the ``Vocab`` and tokenizer it needs to :meth:`generate` from text (saved in checkpoints)."""
        if vocab is not None and len(vocab) != self.hparams.vocab_size:
            raise ValueError(f"the vocab has {len(vocab)} tokens but the model was built for "
                             f"vocab_size={self.hparams.vocab_size}")
        self.vocab, self.tokenizer = vocab, tokenizer

    def setup(self, stage: str) -> None:
        # bits per character when either the setting or the data says the tokens are characters
        self.char_level = self.char_level or bool(getattr(self.datamodule, "char_level", False))
        vocab = getattr(self.datamodule, "vocab", None)
        if vocab is not None:
            self.attach_vocabulary(vocab, getattr(self.datamodule, "tokenizer", None))

    # --- state carrying ----------------------------------------------------------------------------------------
    def _state_for(self, stage: str, batch_size: int) -> Any:
        state = self.states[stage]
        if state is not None and state[0][0].shape[0] != batch_size:
            state = None  # a shorter last batch or a new batch size: start fresh streams
        return state

    def _step(self, batch: Sequence[Tensor], stage: str) -> tuple[Tensor, Tensor, int]:
        inputs, targets = batch[0], batch[1]
        if inputs.dim() != 2 or targets.shape != inputs.shape:
            raise ValueError(f"a batch must be (inputs [B, T], targets [B, T]), got shapes {tuple(inputs.shape)} "
                             f"and {tuple(targets.shape)}")
        state = self._state_for(stage, inputs.shape[0])
        hidden, state, raw = self.model(inputs, state, return_raw=True)
        self.states[stage] = detach_state(state)
        nll = self.model.loss(hidden, targets, inputs)
        loss = nll
        if stage == "train":
            if self.ar:
                loss = loss + self.ar * hidden.pow(2).mean()
            if self.tar and raw.shape[1] > 1:
                loss = loss + self.tar * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
        return loss, nll, targets.numel()

    def on_train_epoch_start(self) -> None:
        resumed = self._resume_epoch is not None and self._resume_epoch == self.current_epoch
        self._resume_epoch = None
        if not resumed:  # a run resumed mid-epoch keeps the carried state restored from the checkpoint
            self.states["train"] = None
        self._in_train_epoch = True
        self._tokens_seen = 0
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        self._in_train_epoch = False

    def on_validation_epoch_start(self) -> None:
        self.states["val"] = None
        self.val_nll.reset()  # (re)create the metric state in this loop's grad mode (inference vs no_grad)

    def on_test_epoch_start(self) -> None:
        self.states["test"] = None
        self.test_nll.reset()

    # --- steps -------------------------------------------------------------------------------------------------
    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> Tensor:
        loss, nll, tokens = self._step(batch, "train")
        self._tokens_seen += tokens
        self.log("train/loss", nll, prog_bar=True)
        if self._trainer is not None and batch_idx % max(self.trainer.log_every_n_steps, 1) == 0:
            elapsed = time.perf_counter() - self._epoch_start  # throughput since the epoch began
            if elapsed > 0:
                self.log("train/tokens_per_s", self._tokens_seen / elapsed)
        return loss

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        _, nll, tokens = self._step(batch, "val")
        self.val_nll.update(nll, weight=tokens)

    def test_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        _, nll, tokens = self._step(batch, "test")
        self.test_nll.update(nll, weight=tokens)

    def _log_epoch(self, stage: str, metric: MeanMetric) -> None:
        if metric.update_count == 0:
            return
        nll = metric.compute()
        metric.reset()
        self.log(f"{stage}/loss", nll, sync_dist=True)
        self.log(f"{stage}/ppl", torch.exp(nll), prog_bar=True, sync_dist=True)
        if self.char_level:
            self.log(f"{stage}/bpc", nll / math.log(2), prog_bar=True, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val", self.val_nll)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test", self.test_nll)

    # --- checkpoints -------------------------------------------------------------------------------------------
    def checkpoint_extras(self) -> dict[str, Any]:
        """``train_state`` (the carried state), ``rng``, ``mid_epoch``, ``epoch``, and ``vocab`` / ``tokenizer``
        when attached."""
        state = self.states["train"]
        np_state = np.random.get_state()
        extras = {
            "train_state": None if state is None else [[t.cpu() for t in s] for s in state],
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                    "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "mid_epoch": self._in_train_epoch,
            "epoch": self.current_epoch if self._trainer is not None else 0,
        }
        return {**super().checkpoint_extras(), **extras, **text_extras(self.vocab, self.tokenizer)}

    def load_checkpoint_extras(self, extra: dict[str, Any]) -> None:
        super().load_checkpoint_extras(extra)
        if "vocab" in extra:
            self.attach_vocabulary(*load_text_extras(extra))
        if self._trainer is None:
            return  # plain load_from_checkpoint: leave the global RNG and training state alone
        state = extra.get("train_state")
        if state is not None:
            device = next(self.model.parameters()).device
            cells = [cell for rnn in self.model.rnns for cell in rnn.cells()]
            state = [cell.state_type(*(t.to(device) for t in fields)) for cell, fields in zip(cells, state)]
        self.states["train"] = state
        self._resume_epoch = extra.get("epoch") if extra.get("mid_epoch") else None
        rng = extra.get("rng")
        if rng is not None:
            torch.set_rng_state(rng["torch"])
            random.setstate(rng["python"])
            name, keys, *rest = rng["numpy"]
            np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
            if rng.get("cuda") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])

    # --- generation --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_ids(self, prompt_ids: Sequence[int], max_new_tokens: int = 200, temperature: float = 1.0,
                     top_k: int | None = None, seed: int | None = None,
                     exclude_ids: Sequence[int] | None = None) -> list[int]:
        """Continue ``prompt_ids`` by ``max_new_tokens`` ids, one step at a time with the state streamed (the
        prompt is read once, nothing is recomputed). ``temperature == 0`` is greedy; ``top_k`` keeps the ``k``
        most likely ids; ``seed`` makes sampling reproducible without touching the global RNG; ``exclude_ids`` are
        never produced (default: the attached vocabulary's tokens that never occur in the training text, such as
        ``<unk>`` in a character vocabulary)."""
        if exclude_ids is None:
            exclude_ids = self.unseen_ids()
        if len(prompt_ids) == 0:
            raise ValueError("the prompt is empty; give at least one token")
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a finite number >= 0 (0 is greedy), got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        vocab_size = self.hparams.vocab_size
        if min(prompt_ids) < 0 or max(prompt_ids) >= vocab_size:
            raise ValueError(f"prompt ids must be in [0, {vocab_size}), got min {min(prompt_ids)}, "
                             f"max {max(prompt_ids)}")
        device = next(self.model.parameters()).device
        generator = torch.Generator(device=device)
        if seed is None:
            generator.seed()  # fresh entropy; the global RNG is left alone
        else:
            generator.manual_seed(seed)
        was_training = self.model.training
        self.model.eval()
        try:
            inputs = torch.tensor([list(prompt_ids)], device=device, dtype=torch.long)
            excluded = torch.tensor(list(exclude_ids), device=device, dtype=torch.long)
            hidden, state = self.model(inputs)
            context = inputs
            keep = self.model.maxent.order if self.model.maxent is not None else 1  # ids the next step looks back at
            out: list[int] = []
            for _ in range(max_new_tokens):
                log_probs = self.model.next_log_probs(hidden[:, -1], context).squeeze(0)
                if exclude_ids:
                    log_probs = log_probs.index_fill(0, excluded, float("-inf"))
                if temperature == 0:
                    next_id = int(log_probs.argmax())
                else:
                    logits = log_probs / temperature
                    if top_k is not None and top_k < logits.numel():
                        kth = torch.topk(logits, top_k).values[-1]
                        logits = logits.masked_fill(logits < kth, float("-inf"))
                    probs = torch.softmax(logits, dim=-1)
                    next_id = int(torch.multinomial(probs, 1, generator=generator))
                out.append(next_id)
                step = torch.tensor([[next_id]], device=device)
                context = torch.cat([context, step], dim=1)[:, -keep:]
                hidden, state = self.model(step, state)
        finally:
            self.model.train(was_training)
        return out

    def unseen_ids(self) -> list[int]:
        """Ids of the vocabulary's tokens with a training count of 0 (none when the vocab carries no counts)."""
        counts = list(getattr(self.vocab, "counts", None) or [])
        if not any(counts):
            return []
        return [i for i, count in enumerate(counts) if count == 0]

    def generate(self, prompt: str | Sequence[int], max_new_tokens: int = 200, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None) -> str:
        """Sample a continuation of ``prompt`` (text, or token ids) and return prompt + continuation as text."""
        if self.vocab is None or self.tokenizer is None:
            raise RuntimeError("generate() needs a vocabulary and tokenizer: call attach_vocabulary(vocab, tokenizer),"
                               " train with a LanguageModelingDataModule, or load a checkpoint that has them")
        if isinstance(prompt, str):
            tokens = self.tokenizer.tokenize(prompt)
            eos = getattr(self.tokenizer, "eos", None)
            if eos is not None and tokens and tokens[-1] == eos and not prompt.endswith("\n"):
                tokens = tokens[:-1]  # the word tokenizer ends every line with <eos>; an open prompt has none
            if not tokens and eos is not None:
                tokens = [eos]
            unknown = sorted({t for t in tokens if t not in self.vocab})
            unk_id = getattr(self.vocab, "unk_id", None)
            if unknown and (unk_id is None or unk_id in self.unseen_ids()):
                # the model never saw <unk> in training: the prompt would silently become <unk><unk>...
                raise ValueError(f"the prompt has tokens the vocabulary does not know: {unknown[:10]!r}"
                                 f"{' ...' if len(unknown) > 10 else ''}; the model was trained without them")
            prompt_ids = self.vocab.encode(tokens)
        else:
            prompt_ids = [int(i) for i in prompt]
        new_ids = self.generate_ids(prompt_ids, max_new_tokens, temperature, top_k, seed)
        return self.tokenizer.detokenize(self.vocab.decode(list(prompt_ids) + new_ids))


__all__ = ["LanguageModelTask", "sgd"]
