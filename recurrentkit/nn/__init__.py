"""Layers built from cells: the ``Recurrent`` sequence runner and its helpers."""

from .recurrent import LearnedInitialState, Recurrent, masked_loop, reverse_padded

__all__ = ["LearnedInitialState", "Recurrent", "masked_loop", "reverse_padded"]
