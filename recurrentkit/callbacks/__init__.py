"""Lightning callbacks and what they draw or write: the NT-ASGD optimizer switch, text-sample logging,
confusion-matrix figures and the TSV prediction writer."""

from .confusion_matrix import log_confusion_matrix, plot_confusion_matrix
from .ntasgd import NTASGD
from .predictions import TSVPredictionWriter, write_predictions
from .text_samples import TextSampleLogger

__all__ = ["NTASGD", "TSVPredictionWriter", "TextSampleLogger", "log_confusion_matrix", "plot_confusion_matrix",
           "write_predictions"]
