"""``Seq2SeqTask``: trains and evaluates :class:`~recurrentkit.models.seq2seq.Seq2Seq` for translation.

Loss: token cross-entropy on the teacher-forced decoder with padding ignored (optionally label-smoothed). Metric:
corpus BLEU from the ``sacrebleu`` package (``corpus_bleu`` with its defaults: 13a tokenisation, exponential
smoothing, cased) on *detokenised* hypotheses against the raw reference sentences, so the figure is the one
``sacrebleu`` prints for the same output file. Validation decodes greedily by default (``val_beam_size``); test and
predict decode with ``beam_size`` (1: greedy).

Logged: ``train/loss``, ``val/loss``, ``val/bleu``, ``test/loss``, ``test/bleu`` (losses are per target token).
The tokenizers and vocabularies travel in the checkpoint (``checkpoint["recurrentkit"]``), so
:meth:`Seq2SeqTask.translate` reads and writes raw strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch.nn import functional as F

from ..models.seq2seq import Seq2Seq
from .base import Task

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")
DECODING_OPTIONS = ("beam_size", "val_beam_size", "length_penalty", "max_decode_length")


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """``sacrebleu.corpus_bleu(hypotheses, [references]).score`` (one reference per sentence)."""
    import sacrebleu

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def _gather_objects(items: list[Any]) -> list[Any]:
    """Concatenate a list from every DDP rank (the list itself outside DDP)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return items
    gathered: list[list[Any]] = [[] for _ in range(dist.get_world_size())]
    dist.all_gather_object(gathered, items)
    return [x for part in gathered for x in part]


class Seq2SeqTask(Task):
    """Encoder-decoder translation with any registered cell.

    The model's arguments (``cell``, ``embedding_size``, ``hidden_size``, ``num_layers``, ``bidirectional``,
    ``decoder_cell``, ``attention``, ``input_feeding``, ``dropout``, ...) are those of
    :class:`~recurrentkit.models.seq2seq.Seq2Seq`, passed through ``**model_kwargs``.

    Args:
        src_vocab_size, tgt_vocab_size: linked from the data module by the CLI.
        optimizer: ``params -> Optimizer`` (YAML: ``{class_path: torch.optim.Adam, init_args: {lr: 0.001}}``).
        lr_scheduler: ``optimizer -> scheduler`` or ``None``; stepped each epoch (a ``ReduceLROnPlateau`` watches
            ``val/loss``).
        label_smoothing: cross-entropy label smoothing.
        beam_size: beam width for test and predict (1: greedy).
        val_beam_size: beam width of the validation BLEU (1: greedy, the fast default).
        length_penalty: ``α`` of the length normalisation ``log p / |y|^α`` in beam search.
        max_decode_length: most tokens generated per sentence (default ``2 * source length + 10``).
        **model_kwargs: the arguments of :class:`~recurrentkit.models.seq2seq.Seq2Seq`.

    The four decoding options are not saved with the checkpoint's hyperparameters: they are chosen at test or
    predict time (``--model.init_args.beam_size=1`` with ``--ckpt_path``).
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, optimizer: OptimizerCallable = torch.optim.Adam,
                 lr_scheduler: LRSchedulerCallable | None = None, label_smoothing: float = 0.0, beam_size: int = 5,
                 val_beam_size: int = 1, length_penalty: float = 1.0, max_decode_length: int | None = None,
                 **model_kwargs: Any) -> None:
        super().__init__(optimizer, lr_scheduler)
        # decoding settings stay out of the checkpoint's hyperparameters: LightningCLI lets a checkpoint's
        # hyperparameters override the command line, and `test --ckpt_path ... --model.init_args.beam_size=1` must work
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler", *DECODING_OPTIONS])
        self.model = Seq2Seq(src_vocab_size, tgt_vocab_size, **model_kwargs)
        self.label_smoothing = label_smoothing
        self.beam_size, self.val_beam_size = beam_size, val_beam_size
        self.length_penalty, self.max_decode_length = length_penalty, max_decode_length
        self.preprocessing: dict[str, Any] | None = None
        self._text: dict[str, Any] = {}
        self._outputs: dict[str, list[tuple[int, str, str]]] = {"val": [], "test": []}
        self.last_hypotheses: dict[str, list[str]] = {}

    # --- preprocessing that travels with the checkpoint ---------------------------------------------------------
    def set_preprocessing(self, state: Mapping[str, Any]) -> None:
        """Adopt a :meth:`TranslationDataModule.preprocessing_state` (tokenizers, vocabularies, ``lowercase``)."""
        from ..data.tokenizers import build_tokenizer
        from ..data.vocab import Vocab

        src_vocab, tgt_vocab = Vocab.from_state_dict(state["src_vocab"]), Vocab.from_state_dict(state["tgt_vocab"])
        for side, vocab, size in (("source", src_vocab, self.hparams.src_vocab_size),
                                  ("target", tgt_vocab, self.hparams.tgt_vocab_size)):
            if len(vocab) != size:
                raise ValueError(f"the {side} vocabulary has {len(vocab)} entries but the model has {size}")
        self.preprocessing = dict(state)
        self._text = {"src_tokenizer": build_tokenizer(state["src_tokenizer"]),
                      "tgt_tokenizer": build_tokenizer(state["tgt_tokenizer"]), "src_vocab": src_vocab,
                      "tgt_vocab": tgt_vocab, "lowercase": bool(state.get("lowercase", False))}

    def setup(self, stage: str) -> None:
        datamodule = self.datamodule
        if self.preprocessing is None and datamodule is not None and hasattr(datamodule, "preprocessing_state"):
            self.set_preprocessing(datamodule.preprocessing_state())

    def checkpoint_extras(self) -> dict[str, Any]:
        """``src_tokenizer``, ``tgt_tokenizer`` (configs, BPE merges included), ``src_vocab``, ``tgt_vocab``,
        ``lowercase``."""
        return {**super().checkpoint_extras(), **(self.preprocessing or {})}

    def load_checkpoint_extras(self, extras: dict[str, Any]) -> None:
        super().load_checkpoint_extras(extras)
        if extras.get("src_vocab") is not None:
            self.set_preprocessing(extras)

    def detokenize(self, ids: Sequence[int]) -> str:
        """Target ids -> text (special tokens dropped)."""
        if not self._text:
            raise RuntimeError("no tokenizer/vocabulary: train with a TranslationDataModule, load a checkpoint, "
                               "or call set_preprocessing()")
        tokens = [t for t in self._text["tgt_vocab"].decode(ids) if t not in SPECIAL_TOKENS]
        return self._text["tgt_tokenizer"].detokenize(tokens).strip()

    # --- steps -------------------------------------------------------------------------------------------------
    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor | None, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.model(src, src_lengths, tgt_in)

    def _loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, int]:
        logits = self(batch["src"], batch["src_lengths"], batch["tgt_in"])
        target = batch["tgt_out"]
        loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=self.model.pad_id,
                               label_smoothing=self.label_smoothing)
        return loss, int((target != self.model.pad_id).sum())

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss, tokens = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=tokens)
        return loss

    def decode_batch(self, batch: Mapping[str, Any], beam_size: int) -> list[str]:
        """Translate a batch's sources to detokenised strings."""
        ids = self.model.translate(batch["src"], batch["src_lengths"], beam_size=beam_size,
                                   length_penalty=self.length_penalty, max_length=self.max_decode_length)
        return [self.detokenize(row) for row in ids]

    def _eval_step(self, stage: str, batch: Mapping[str, Any], beam_size: int) -> None:
        loss, tokens = self._loss(batch)
        self.log(f"{stage}/loss", loss, on_epoch=True, batch_size=tokens)
        hypotheses = self.decode_batch(batch, beam_size)
        self._outputs[stage].extend(zip(batch["index"].tolist(), hypotheses, batch["tgt_text"]))

    def _eval_epoch_end(self, stage: str) -> None:
        rows = sorted(_gather_objects(self._outputs[stage]))
        self._outputs[stage] = []
        if not rows:
            return
        hypotheses, references = [h for _, h, _ in rows], [r for _, _, r in rows]
        self.last_hypotheses[stage] = hypotheses
        self.log(f"{stage}/bleu", corpus_bleu(hypotheses, references), rank_zero_only=False)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._eval_step("val", batch, self.val_beam_size)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._eval_step("test", batch, self.beam_size)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """``{"index": LongTensor[B], "translation": list[str]}`` with ``beam_size``."""
        return {"index": batch["index"], "translation": self.decode_batch(batch, self.beam_size)}

    # --- raw strings -----------------------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, texts: str | Sequence[str], beam_size: int | None = None, batch_size: int = 64
                  ) -> list[str]:
        """Translate raw source sentences (in input order) with the checkpoint's tokenizers."""
        if not self._text:
            raise RuntimeError("no tokenizer/vocabulary: load a checkpoint trained with a TranslationDataModule "
                               "or call set_preprocessing()")
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokenizer, vocab = self._text["src_tokenizer"], self._text["src_vocab"]
        encoded = []
        for i, text in enumerate(texts):
            ids = vocab.encode(tokenizer.tokenize(text.lower() if self._text["lowercase"] else text)) if text else []
            if not ids:
                raise ValueError(f"sentence {i} is empty: {text!r}")
            encoded.append(ids)
        out: list[str] = []
        was_training = self.training
        self.eval()
        try:  # batches in input order, as `recurrentkit predict` reads a file
            for start in range(0, len(encoded), batch_size):
                rows = encoded[start:start + batch_size]
                lengths = torch.tensor([len(ids) for ids in rows])
                src = torch.full((len(rows), int(lengths.max())), self.model.pad_id, dtype=torch.long)
                for r, ids in enumerate(rows):
                    src[r, :len(ids)] = torch.tensor(ids)
                batch = {"src": src.to(self.device), "src_lengths": lengths}
                out.extend(self.decode_batch(batch, beam_size or self.beam_size))
        finally:
            self.train(was_training)
        return out
