"""Plain ``nn.Module`` models built from cells, usable without Lightning.

Names are imported on first use, so importing one model does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"RNNLanguageModel": ".lm", "RecurrentClassifier": ".classifier", "RecurrentTagger": ".tagger",
            "RecurrentRegressor": ".regressor", "EchoStateNetwork": ".esn", "Seq2Seq": ".seq2seq"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
