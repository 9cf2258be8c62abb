"""``TranslationDataModule``: parallel text -> subword ids -> length-bucketed batches for a seq2seq model.

Sources, both read through Hugging Face ``datasets.load_dataset``:

* local parallel text files, one sentence per line, line ``i`` of ``{prefix}.{source_lang}`` translating line ``i``
  of ``{prefix}.{target_lang}`` (the layout of Multi30k, IWSLT and WMT releases): ``train_prefix``, ``val_prefix``,
  ``test_prefix`` under ``data_dir``;
* a Hugging Face translation dataset (``dataset``, ``dataset_config``, ``dataset_kwargs``): a ``translation`` column
  of ``{lang: text}`` dicts (the WMT builders' layout) or one column per language.

Subwords: byte-level BPE (:class:`~recurrentkit.data.tokenizers.BPETokenizer`, the ``tokenizers`` library) trained
on the training split only, one model shared by both sides (``shared_vocab=True``) or one per side. Byte-level BPE
is lossless, so ``detokenize`` gives back the text exactly and BLEU is computed on ordinary detokenised output. The
vocabularies put ``<pad>``, ``<unk>``, ``<s>``, ``</s>`` at ids 0-3 (the ids
:class:`~recurrentkit.models.seq2seq.Seq2Seq` expects). A batch is a dict::

    {"src": LongTensor[B, S], "src_lengths": LongTensor[B], "tgt_in": LongTensor[B, T] (<s> y_1..y_n),
     "tgt_out": LongTensor[B, T] (y_1..y_n </s>), "index": LongTensor[B], "src_text": list[str],
     "tgt_text": list[str]}

(``tgt_*`` absent when predicting). Training pairs longer than ``max_length`` subwords on either side are dropped
(their number is reported); evaluation sentences are never dropped or cut, so BLEU covers the whole test set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from .sequences import SequenceDataModule
from .tokenizers import Tokenizer, build_tokenizer
from .vocab import Vocab

__all__ = ["SPECIALS", "ParallelSplit", "TranslationCollator", "TranslationDataModule", "load_parallel_files"]

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0, 1, 2, 3


def load_parallel_files(source: str | os.PathLike, target: str | os.PathLike | None
                        ) -> tuple[list[str], list[str] | None]:
    """Read two line-aligned text files with ``datasets``' ``text`` builder; the line counts must match and no
    line may be blank (the error names the file and line)."""
    from datasets import load_dataset

    sides = []
    for path in (source, target):
        if path is None:
            sides.append(None)
            continue
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"parallel text file not found: {path}")
        rows = load_dataset("text", data_files={"data": path}, split="data", keep_in_memory=True)["text"]
        for line, text in enumerate(rows, start=1):
            if not text.strip():
                raise ValueError(f"{path}:{line}: empty sentence (parallel files need one sentence per line)")
        sides.append([t.strip() for t in rows])
    src, tgt = sides
    if tgt is not None and len(src) != len(tgt):
        raise ValueError(f"{source} has {len(src)} lines but {target} has {len(tgt)}: parallel files must be "
                         f"line-aligned")
    if not src:
        raise ValueError(f"{source}: no sentences")
    return src, tgt


def _from_hf_dataset(ds: Any, source_lang: str, target_lang: str, origin: str) -> tuple[list[str], list[str]]:
    columns = ds.column_names
    if "translation" in columns:
        pairs = ds["translation"]
        missing = {source_lang, target_lang} - set(pairs[0]) if pairs else set()
        if missing:
            raise ValueError(f"{origin}: the translation column has languages {sorted(pairs[0])}, not "
                             f"{sorted(missing)}; set source_lang/target_lang")
        src, tgt = [p[source_lang] for p in pairs], [p[target_lang] for p in pairs]
    elif source_lang in columns and target_lang in columns:
        src, tgt = ds[source_lang], ds[target_lang]
    else:
        raise ValueError(f"{origin}: no 'translation' column and no columns {source_lang!r}/{target_lang!r} "
                         f"(columns: {columns})")
    for row, (s, t) in enumerate(zip(src, tgt)):
        if not (isinstance(s, str) and s.strip() and isinstance(t, str) and t.strip()):
            raise ValueError(f"{origin}, row {row}: empty or missing sentence")
    return [s.strip() for s in src], [t.strip() for t in tgt]


class ParallelSplit(Dataset):
    """Encoded pairs: ``(index, src_ids, tgt_ids | None, src_text, tgt_text | None)``."""

    def __init__(self, src_ids: list[list[int]], tgt_ids: list[list[int]] | None, src_text: list[str],
                 tgt_text: list[str] | None, index: list[int] | None = None) -> None:
        self.src_ids, self.tgt_ids, self.src_text, self.tgt_text = src_ids, tgt_ids, src_text, tgt_text
        self.index = list(range(len(src_ids))) if index is None else index

    def __len__(self) -> int:
        return len(self.src_ids)

    def __getitem__(self, i: int) -> tuple[int, list[int], list[int] | None, str, str | None]:
        return (self.index[i], self.src_ids[i], None if self.tgt_ids is None else self.tgt_ids[i],
                self.src_text[i], None if self.tgt_text is None else self.tgt_text[i])

    @property
    def lengths(self) -> list[int]:
        """Bucketing key: the longer side of each pair."""
        if self.tgt_ids is None:
            return [len(s) for s in self.src_ids]
        return [max(len(s), len(t) + 1) for s, t in zip(self.src_ids, self.tgt_ids)]


class TranslationCollator:
    """Pads a list of :class:`ParallelSplit` items into the batch dict described in the module docstring."""

    def __init__(self, pad_id: int = 0, bos_id: int = 2, eos_id: int = 3) -> None:
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def _pad(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        out = torch.full((len(rows), max(len(r) for r in rows)), self.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        return out

    def __call__(self, items: Sequence[tuple]) -> dict[str, Any]:
        index, src, tgt, src_text, tgt_text = zip(*items)
        batch: dict[str, Any] = {"src": self._pad(src), "src_lengths": torch.tensor([len(s) for s in src]),
                                 "index": torch.tensor(index), "src_text": list(src_text)}
        if tgt[0] is not None:
            batch["tgt_in"] = self._pad([[self.bos_id, *t] for t in tgt])
            batch["tgt_out"] = self._pad([[*t, self.eos_id] for t in tgt])
            batch["tgt_text"] = list(tgt_text)
        return batch


class TranslationDataModule(SequenceDataModule):
    """Parallel sentences for translation, from local files or a Hugging Face dataset.

    Args:
        source_lang, target_lang: language codes: file suffixes (``train.de``) or keys of the ``translation``
            column / column names of a dataset.
        data_dir: where the files are (default :func:`~recurrentkit.data.presets.default_data_dir`:
            ``$RK_DATA_DIR``, else ``../shared/data`` when it exists); relative prefixes are tried as given first.
        train_prefix, val_prefix, test_prefix: file prefixes, ``{prefix}.{lang}`` (``None``: no such split).
        predict_file: source sentences to translate, one per line.
        dataset, dataset_config: a hub dataset (or local dataset folder / builder name such as ``"json"``) for
            ``load_dataset``, used instead of the files with splits ``train_split``, ``val_split``, ``test_split``.
        dataset_kwargs: more ``load_dataset`` arguments (e.g. ``data_files``).
        vocab_size: BPE vocabulary size (per side, or of the shared model).
        shared_vocab: one BPE model and vocabulary for both sides.
        min_frequency: BPE merge threshold.
        lowercase: lowercase both sides before tokenizing (BLEU is then computed on lowercased references).
        max_length: drop training pairs with more subwords than this on either side.
        batch_size, eval_batch_size: sentence pairs per batch.
        pool_batches: batches per bucketing pool.
        num_workers: DataLoader workers.
        seed: seed of the training order.

    Batches are bucketed by source length (:class:`~recurrentkit.data.sequences.SequenceDataModule`); under DDP
    training and evaluation batches are sharded by rank (``Seq2SeqTask`` gathers every rank's hypotheses before
    BLEU).
    """

    # evaluation is sharded across DDP ranks like training: Seq2SeqTask gathers every rank's hypotheses before BLEU

    def __init__(self, source_lang: str, target_lang: str, data_dir: str | None = None,
                 train_prefix: str | None = "train", val_prefix: str | None = "val", test_prefix: str | None = None,
                 predict_file: str | None = None, dataset: str | None = None, dataset_config: str | None = None,
                 dataset_kwargs: dict[str, Any] | None = None, train_split: str = "train",
                 val_split: str | None = "validation", test_split: str | None = "test", vocab_size: int = 8000,
                 shared_vocab: bool = True, min_frequency: int = 2, lowercase: bool = False,
                 max_length: int | None = 100, batch_size: int = 64, eval_batch_size: int | None = None,
                 pool_batches: int = 50, num_workers: int = 0, seed: int = 0) -> None:
        if source_lang == target_lang:
            raise ValueError(f"source_lang and target_lang are both {source_lang!r}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if dataset is None and train_prefix is None:
            raise ValueError("give train_prefix (local files) or a dataset")
        # a split's "file" is its prefix: the two sides are {prefix}.{source_lang} and {prefix}.{target_lang}
        super().__init__(preset=None, data_dir=data_dir, train_file=train_prefix, val_file=val_prefix,
                         test_file=test_prefix, predict_file=predict_file, dataset=dataset,
                         dataset_config=dataset_config, train_split=train_split, val_split=val_split,
                         test_split=test_split, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         bucketing=True, pool_batches=pool_batches, num_workers=num_workers, seed=seed)
        self.source_lang, self.target_lang = source_lang, target_lang
        self.prefixes = {"train": train_prefix, "val": val_prefix, "test": test_prefix}
        self.dataset_kwargs = dict(dataset_kwargs or {})
        self.vocab_size, self.shared_vocab, self.min_frequency = vocab_size, shared_vocab, min_frequency
        self.lowercase, self.max_length = lowercase, max_length
        self.src_tokenizer: Tokenizer | None = None
        self.tgt_tokenizer: Tokenizer | None = None
        self.src_vocab: Vocab | None = None
        self.tgt_vocab: Vocab | None = None
        self._train_tokens: tuple[list[list[str]], list[list[str]]] | None = None

    # --- sources -------------------------------------------------------------------------------------------------
    def _read_split(self, stage: str) -> tuple[list[str], list[str] | None]:
        """``(sources, targets)`` of a split as text (``targets`` is ``None`` for ``"predict"``)."""
        if stage == "predict":
            raw = load_parallel_files(self._resolve(self.predict_file), None)
        elif self.dataset is not None:
            from datasets import load_dataset

            split = self.splits[stage]
            ds = load_dataset(self.dataset, self.dataset_config, split=split, **self.dataset_kwargs)
            raw = _from_hf_dataset(ds, self.source_lang, self.target_lang, f"{self.dataset}[{split}]")
        else:
            prefix = self._resolve(self.prefixes[stage])
            raw = load_parallel_files(f"{prefix}.{self.source_lang}", f"{prefix}.{self.target_lang}")
        if self.lowercase:
            raw = ([s.lower() for s in raw[0]], None if raw[1] is None else [t.lower() for t in raw[1]])
        return raw

    def _no_split_message(self, stage: str) -> str:
        if stage == "predict":
            return "set predict_file (source sentences, one per line) to translate"
        return f"no {stage} split is configured: set {stage}_prefix (files) or {stage}_split (dataset)"

    # --- subwords and vocabularies (training split only) -----------------------------------------------------------
    def _train_bpe(self, texts: list[str]) -> Tokenizer:
        tokenizer = build_tokenizer("bpe", vocab_size=self.vocab_size, min_frequency=self.min_frequency)
        tokenizer.train(texts)
        return tokenizer

    def prepare_vocab(self) -> None:
        """Train the BPE model(s) and build the vocabularies on the training split (once)."""
        if self.src_vocab is not None:
            return
        src, tgt = self.raw_split("train")
        if self.shared_vocab:
            self.src_tokenizer = self.tgt_tokenizer = self._train_bpe(src + tgt)
        else:
            self.src_tokenizer, self.tgt_tokenizer = self._train_bpe(src), self._train_bpe(tgt)
        src_tokens = [self.src_tokenizer.tokenize(s) for s in src]
        tgt_tokens = [self.tgt_tokenizer.tokenize(t) for t in tgt]
        if self.shared_vocab:
            self.src_vocab = self.tgt_vocab = Vocab.build(src_tokens + tgt_tokens, specials=SPECIALS)
        else:
            self.src_vocab = Vocab.build(src_tokens, specials=SPECIALS)
            self.tgt_vocab = Vocab.build(tgt_tokens, specials=SPECIALS)
        self._train_tokens = (src_tokens, tgt_tokens)

    def _encode_train(self) -> ParallelSplit:
        """The training pairs within ``max_length`` (on both sides), encoded."""
        src, tgt = self.raw_split("train")
        if self._train_tokens is None:
            self._train_tokens = ([self.src_tokenizer.tokenize(s) for s in src],
                                  [self.tgt_tokenizer.tokenize(t) for t in tgt])
        src_tokens, tgt_tokens = self._train_tokens
        keep = [i for i, (s, t) in enumerate(zip(src_tokens, tgt_tokens))
                if self.max_length is None or (len(s) <= self.max_length and len(t) <= self.max_length)]
        if len(keep) < len(src):
            rank_zero_info(f"translation data: dropped {len(src) - len(keep)} of {len(src)} training pairs longer "
                           f"than max_length={self.max_length} subwords")
        if not keep:
            raise ValueError(f"every training pair is longer than max_length={self.max_length}")
        return ParallelSplit([self.src_vocab.encode(src_tokens[i]) for i in keep],
                             [self.tgt_vocab.encode(tgt_tokens[i]) for i in keep],
                             [src[i] for i in keep], [tgt[i] for i in keep], keep)

    @property
    def src_vocab_size(self) -> int:
        self.prepare_vocab()
        return len(self.src_vocab)

    @property
    def tgt_vocab_size(self) -> int:
        self.prepare_vocab()
        return len(self.tgt_vocab)

    def encode_source(self, texts: Sequence[str]) -> list[list[int]]:
        """Source-side ids of raw sentences."""
        self.prepare_vocab()
        return [self.src_vocab.encode(self.src_tokenizer.tokenize(t.lower() if self.lowercase else t))
                for t in texts]

    def encoded(self, stage: str) -> ParallelSplit:
        """The encoded split of ``stage``, built once."""
        self.prepare_vocab()
        if stage == "train" and stage not in self._encoded:
            self._encoded[stage] = self._encode_train()
        elif stage not in self._encoded:
            src, tgt = self.raw_split(stage)
            tgt_ids = None if tgt is None else [self.tgt_vocab.encode(self.tgt_tokenizer.tokenize(t)) for t in tgt]
            src_ids = [self.src_vocab.encode(self.src_tokenizer.tokenize(s)) for s in src]
            self._encoded[stage] = ParallelSplit(src_ids, tgt_ids, src, tgt)
        return self._encoded[stage]

    @property
    def predict_texts(self) -> list[str]:
        """The source sentences of ``predict_file``, in file order."""
        return self.raw_split("predict")[0]

    def collate(self, data: ParallelSplit) -> TranslationCollator:
        """Pads source and target sides; the target gets ``<s>``/``</s>`` (see :class:`TranslationCollator`)."""
        return TranslationCollator(SPECIALS.index("<pad>"), SPECIALS.index("<s>"), SPECIALS.index("</s>"))

    def write_predictions(self, predictions: Sequence[Mapping[str, Any]], path: str | None = None) -> str:
        """Write ``predict_step`` outputs (dicts with ``index`` and ``translation``) one translation per line, in the
        order of ``predict_file`` (default path: ``<predict_file>.translations.txt``). Returns the path written."""
        n = len(self.raw_split("predict")[0])
        lines: list[str | None] = [None] * n
        for batch in predictions:
            for index, text in zip(batch["index"].tolist(), batch["translation"]):
                lines[index] = " ".join(text.splitlines())  # one line per sentence, whatever the model wrote
        missing = [i for i, t in enumerate(lines) if t is None]
        if missing:
            raise ValueError(f"no translation for {len(missing)} of {n} sentences (first: line {missing[0] + 1})")
        path = path or f"{self.predict_file}.translations.txt"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("".join(t + "\n" for t in lines), encoding="utf-8")
        return path

    # --- what a trained model needs to read and write text ----------------------------------------------------------
    def preprocessing_state(self) -> dict[str, Any]:
        """Tokenizer configs (the BPE merges included), vocabularies and ``lowercase``."""
        self.prepare_vocab()
        return {"src_tokenizer": self.src_tokenizer.config(), "tgt_tokenizer": self.tgt_tokenizer.config(),
                "src_vocab": self.src_vocab.state_dict(), "tgt_vocab": self.tgt_vocab.state_dict(),
                "lowercase": self.lowercase}

    def state_dict(self) -> dict[str, Any]:
        return self.preprocessing_state() if self.src_vocab is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Adopt a checkpoint's tokenizers and vocabularies (prediction uses the training vocabulary)."""
        if not state:
            return
        self.src_tokenizer = build_tokenizer(state["src_tokenizer"])
        self.tgt_tokenizer = build_tokenizer(state["tgt_tokenizer"])
        self.src_vocab = Vocab.from_state_dict(state["src_vocab"])
        self.tgt_vocab = Vocab.from_state_dict(state["tgt_vocab"])
        self.lowercase = state.get("lowercase", False)
        self._encoded, self._train_tokens = {}, None
