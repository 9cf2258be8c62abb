"""Data: tokenizers, vocab and Lightning data modules (``datasets``/``tokenizers`` are imported lazily)."""

from .bucketing import BucketBatchSampler
from .classification import ClassificationDataModule
from .lm import BPTTBatches, LanguageModelingDataModule, batchify, bptt_window_lengths, load_vocab_and_tokenizer
from .presets import PRESETS, resolve_preset
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer, build_tokenizer
from .vocab import Vocab

__all__ = [
    "BucketBatchSampler",
    "ClassificationDataModule",
    "BPETokenizer",
    "BPTTBatches",
    "CharTokenizer",
    "LanguageModelingDataModule",
    "PRESETS",
    "Tokenizer",
    "Vocab",
    "WordTokenizer",
    "batchify",
    "bptt_window_lengths",
    "build_tokenizer",
    "load_vocab_and_tokenizer",
    "resolve_preset",
]
