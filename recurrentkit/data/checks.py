"""Checks of local data files that name the file, line and column, run before ``datasets`` reads them (whose own
errors, a ``UnicodeDecodeError ... position 42`` or pandas' "Expected 2 fields", name neither the file nor the line).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError


class DataFileError(UserError, ValueError):
    """A local data file that cannot be read as it is."""


def check_utf8(path: str | os.PathLike) -> None:
    """Raise :class:`DataFileError` naming the first line and column that are not valid UTF-8."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DataFileError(
                    f"{path}, line {number}, column {error.start + 1}: byte 0x{raw[error.start]:02x} is not valid "
                    "UTF-8; re-encode the file, e.g. `iconv -f latin1 -t utf-8`") from None


def check_delimited(path: str | os.PathLike, delimiter: str = "\t") -> None:
    """Raise :class:`DataFileError` naming the first line whose field count differs from the header's (a tab inside
    the text of a TSV, say). Run after :func:`check_utf8`."""
    name = "tab" if delimiter == "\t" else repr(delimiter)
    with open(path, encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n")
        expected = header.count(delimiter) + 1
        for number, line in enumerate(handle, start=2):
            line = line.rstrip("\r\n")
            if line and line.count(delimiter) + 1 != expected:
                raise DataFileError(
                    f"{path}, line {number}: {line.count(delimiter) + 1} {name}-separated fields, but the header "
                    f"has {expected} ({header!r}); a {name} inside the text must be removed or replaced")


def check_local_files(files: object, delimiter: str | None = None) -> None:
    """Run the checks on every existing local path in ``files`` (a path, a list, or a dict split -> path(s))."""
    if isinstance(files, dict):
        for value in files.values():
            check_local_files(value, delimiter)
        return
    for path in files if isinstance(files, (list, tuple)) else [files]:
        if isinstance(path, (str, os.PathLike)) and Path(path).is_file():
            check_utf8(path)
            if delimiter is not None:
                check_delimited(path, delimiter)


__all__ = ["DataFileError", "check_delimited", "check_local_files", "check_utf8"]
