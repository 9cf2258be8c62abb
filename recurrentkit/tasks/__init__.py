"""LightningModules: training, evaluation and generation around the models.

Names are imported on first use, so importing one task does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LanguageModelTask": ".language_model",
    "ClassificationTask": ".classification",
    "ForecastingTask": ".forecasting",
    "ReservoirTask": ".reservoir",
    "SequenceTaggingTask": ".tagging",
    "Seq2SeqTask": ".seq2seq",
    "Task": ".base",
    "Word2VecTask": ".word2vec",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
