"""Data: tokenizers, vocab and Lightning data modules (``datasets``/``tokenizers`` are imported lazily)."""

from .bucketing import BucketBatchSampler
from .classification import ClassificationDataModule
from .lm import BPTTBatches, LanguageModelingDataModule, batchify, bptt_window_lengths, load_vocab_and_tokenizer
from .lm1b import OneBillionWordDataModule
from .lm_stream import TokenStreamDataModule
from .presets import PRESETS, default_data_dir, get_preset, list_presets, resolve_preset
from .tagging import TaggingDataModule
from .timeseries import (
    NARMA10_COEFFICIENTS,
    CSVSeriesDataModule,
    MackeyGlassDataModule,
    NARMA10DataModule,
    SeriesDataModule,
    SineTransformDataModule,
    load_csv_series,
    mackey_glass,
    narma10,
    sine_transform,
)
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer, build_tokenizer
from .vocab import Vocab

__all__ = [
    "CSVSeriesDataModule",
    "MackeyGlassDataModule",
    "NARMA10DataModule",
    "NARMA10_COEFFICIENTS",
    "SeriesDataModule",
    "SineTransformDataModule",
    "load_csv_series",
    "mackey_glass",
    "narma10",
    "sine_transform",
    "BucketBatchSampler",
    "ClassificationDataModule",
    "BPETokenizer",
    "BPTTBatches",
    "CharTokenizer",
    "LanguageModelingDataModule",
    "OneBillionWordDataModule",
    "PRESETS",
    "TokenStreamDataModule",
    "Tokenizer",
    "Vocab",
    "WordTokenizer",
    "batchify",
    "bptt_window_lengths",
    "build_tokenizer",
    "default_data_dir",
    "get_preset",
    "list_presets",
    "load_vocab_and_tokenizer",
    "resolve_preset",
    "TaggingDataModule",
]
