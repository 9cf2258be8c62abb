"""Lightning callbacks: the NT-ASGD optimizer switch and text-sample logging."""

from .ntasgd import NTASGD
from .text_samples import TextSampleLogger

__all__ = ["NTASGD", "TextSampleLogger"]
