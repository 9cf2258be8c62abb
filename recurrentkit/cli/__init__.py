"""The ``recurrentkit`` command, the one front door: ``fit|validate|test|predict`` (LightningCLI, every task),
``generate``, ``ngram``, ``table``, ``cells``.

The command-line layer lives here and only here: :mod:`.lightning` (the LightningCLI that runs every recipe),
:mod:`.generate`, :mod:`.ngram` and :mod:`.table`. The library (tasks, models, baselines, embeddings) has no
command-line code, and nothing outside this package imports it.
"""

from __future__ import annotations

import sys

from .lightning import LIGHTNING_SUBCOMMANDS, build_cli, print_summary, run_lightning


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recurrentkit`` console script."""
    from ..allocator import keep_freed_memory, prefer_huge_pages
    from ..console import quiet_third_party_notices

    keep_freed_memory()  # reuse freed tensor memory instead of page-faulting it back in every step
    prefer_huge_pages()  # and fault the larger buffers glibc still maps afresh in 2 MiB pages, not 4 KiB
    quiet_third_party_notices()
    from_command_line = argv is None
    args = sys.argv[1:] if argv is None else list(argv)
    command = args[0] if args else "--help"
    from ..cells.plugins import load_entry_points

    load_entry_points()  # installed packages' cells (entry-point group `recurrentkit.cells`) register before use
    if command in ("-V", "--version", "version", "cells"):
        import recurrentkit as rk

        print(f"recurrentkit {rk.__version__}")
        print("cells:", ", ".join(rk.list_cells()))
        return 0
    if command in LIGHTNING_SUBCOMMANDS:
        from ..errors import UserError

        try:
            return run_lightning(args, from_command_line)
        except UserError as error:  # a clear sentence, not a 30-frame traceback
            print(f"recurrentkit {command}: error: {error}", file=sys.stderr)
            return 1
    if command == "generate":
        from .generate import generate_main

        return generate_main(args[1:])
    if command == "ngram":
        from .ngram import ngram_main

        return ngram_main(args[1:])
    if command == "table":
        from .table import table_main

        return table_main(args[1:])
    usage = ("usage: recurrentkit {fit,validate,test,predict} -c RECIPE.yaml [--options]\n"
             "       recurrentkit generate --ckpt_path CKPT --prompt TEXT\n"
             "       recurrentkit ngram --data DIR --order 5\n"
             "       recurrentkit table --scale ptb [--budget MINUTES]\n"
             "       recurrentkit --version | cells")
    if command in ("-h", "--help", "help"):
        print(usage)
        return 0
    print(f"recurrentkit: unknown command {command!r}\n{usage}", file=sys.stderr)
    return 2


__all__ = ["build_cli", "main", "print_summary", "run_lightning"]
