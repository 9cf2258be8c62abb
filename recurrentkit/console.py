"""Keep the console to what the user needs: the notices third-party libraries print on every run, filtered narrowly.

Before anything of ours, every ``recurrentkit`` run used to print three things the user can do nothing about:

- Lightning's notice that ``tensorboardX`` is no longer a dependency (``logger: true`` then writes CSV logs; the
  notice repeats on every run that keeps the default logger);
- Lightning's "💡 Tip" advertising ``litlogger``, logged at INFO level;
- a ``FutureWarning`` from ``torch.utils._pytree`` ("``isinstance(treespec, LeafSpec)`` is deprecated"), raised inside
  Lightning's own ``lightning/pytorch/utilities/_pytree.py``.

:func:`quiet_third_party_notices` drops exactly these, matched by the start of their text (and, for the
warnings, their category; for the pytree warning, the module it is raised from). Every other warning and log
line still shows.
"""

from __future__ import annotations

import logging
import re
import warnings

__all__ = ["quiet_third_party_notices", "QUIET_WARNINGS", "QUIET_LOG_PREFIXES"]

#: (category, start of the message, module the warning is attributed to or None) of the warnings dropped
QUIET_WARNINGS: tuple[tuple[type[Warning], str, str | None], ...] = (
    (UserWarning, "Starting from v1.9.0, `tensorboardX` has been removed as a dependency", None),
    (FutureWarning, "`isinstance(treespec, LeafSpec)` is deprecated", r"lightning\.pytorch\.utilities\._pytree"),
)
#: starts of the log messages dropped
QUIET_LOG_PREFIXES: tuple[str, ...] = ("💡 Tip: For seamless cloud logging and experiment tracking, try installing "
                                       "[litlogger]",)
# the loggers Lightning's rank-zero messages go through (which one depends on what was imported last)
_RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                      "lightning_utilities.core.rank_zero")


class _DropLogMessages(logging.Filter):
    """Drops log records whose message starts with one of ``prefixes``."""

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefixes)


_LOG_FILTER = _DropLogMessages(QUIET_LOG_PREFIXES)


def quiet_third_party_notices() -> None:
    """Filter the third-party notices listed in this module's docstring (idempotent; call it at command start)."""
    for category, start, module in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(start), category=category, module=module or "")
    for name in _RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)
