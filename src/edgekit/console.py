"""The two consoles every command prints on: `out` (results, stdout) and `err` (progress and errors,
stderr), shared by edgekit's command line and the Olympics' subcommands."""
from __future__ import annotations

import sys

from rich.console import Console


class _Stdout(Console):
    def on_broken_pipe(self) -> None:  # rich would exit 1 itself; main() ends every early close the same way
        raise BrokenPipeError


# Piped output (files, CI logs) is not cut to 80 columns: tables stay whole.
out = _Stdout(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)
