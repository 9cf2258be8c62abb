"""recurrentkit: pluggable recurrent cells, a ``Recurrent`` layer that runs any of them, and Lightning tasks.

>>> import recurrentkit as rk
>>> rk.list_cells()  # doctest: +ELLIPSIS
['elman', 'esn', 'gru', 'jordan', 'leaky', 'lstm', 'min_gru', 'min_lstm', 'simplified_gru'...]
"""

from .cells import (
    CellInfo,
    RecurrentCell,
    State,
    create_cell,
    detach_state,
    get_cell_class,
    get_cell_info,
    list_cells,
    register_cell,
    unregister_cell,
)
from .nn import Recurrent

__version__ = "0.1.0"

# Lightning-side names are imported on first use, so `import recurrentkit` stays as light as torch.
_LAZY_EXPORTS = {
    "LanguageModelTask": "recurrentkit.tasks.language_model",
    "ClassificationTask": "recurrentkit.tasks.classification",
    "ForecastingTask": "recurrentkit.tasks.forecasting",
    "ReservoirTask": "recurrentkit.tasks.reservoir",
    "RNNLanguageModel": "recurrentkit.models.lm",
    "RecurrentClassifier": "recurrentkit.models.classifier",
    "LanguageModelingDataModule": "recurrentkit.data.lm",
    "ClassificationDataModule": "recurrentkit.data.classification",
    "OneBillionWordDataModule": "recurrentkit.data.lm1b",
    "NTASGD": "recurrentkit.callbacks.ntasgd",
    "TextSampleLogger": "recurrentkit.callbacks.text_samples",
    "Vocab": "recurrentkit.data.vocab",
    "KneserNeyLM": "recurrentkit.baselines.ngram",
    "RidgeReadout": "recurrentkit.nn.readout",
    "SequenceTaggingTask": "recurrentkit.tasks.tagging",
    "RecurrentTagger": "recurrentkit.models.tagger",
    "TaggingDataModule": "recurrentkit.data.tagging",
    "LinearChainCRF": "recurrentkit.nn.crf",
}


def __getattr__(name: str):
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'recurrentkit' has no attribute {name!r}")

__all__ = [
    *_LAZY_EXPORTS,
    "CellInfo",
    "Recurrent",
    "RecurrentCell",
    "State",
    "__version__",
    "create_cell",
    "detach_state",
    "get_cell_class",
    "get_cell_info",
    "list_cells",
    "register_cell",
    "unregister_cell",
]
