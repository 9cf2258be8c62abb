"""Lightning callbacks and what they draw or write: the NT-ASGD optimizer switch, text-sample logging,
confusion-matrix figures, the TSV prediction writer, the divergence guard, preemption checkpoints, an exact
per-step loss trace and the resumable training clock."""

from .confusion_matrix import log_confusion_matrix, plot_confusion_matrix
from .divergence import DivergenceError, DivergenceGuard
from .loss_trace import LossTrace
from .ntasgd import NTASGD
from .predictions import TSVPredictionWriter, write_predictions
from .preemption import Preempted, PreemptionCheckpoint
from .text_samples import TextSampleLogger
from .training_clock import TrainingClock

__all__ = ["NTASGD", "DivergenceError", "DivergenceGuard", "LossTrace", "Preempted", "PreemptionCheckpoint",
           "TSVPredictionWriter", "TextSampleLogger", "TrainingClock", "log_confusion_matrix", "plot_confusion_matrix",
           "write_predictions"]
