"""The ``recurrentkit`` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recurrentkit`` console script."""
    import recurrentkit as rk

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-V", "--version", "version", "cells"):
        print(f"recurrentkit {rk.__version__}")
        print("cells:", ", ".join(rk.list_cells()))
        return 0
    print(f"recurrentkit: unknown command {args[0]!r}; try 'recurrentkit --version'", file=sys.stderr)
    return 2
