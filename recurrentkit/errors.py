"""The one base class of the errors a user causes (a bad file, setting or checkpoint, a diverged run).

Their messages name the file, line, setting or step; the ``recurrentkit`` command prints them as one sentence,
without a traceback, and exits with status 1.
"""

from __future__ import annotations


class UserError(Exception):
    """An error in the user's input or run, with a message that says what and where."""


class ConfigError(UserError, ValueError):
    """A configuration value that cannot work (an unknown cell name, say), found before any data is loaded."""


__all__ = ["ConfigError", "UserError"]
