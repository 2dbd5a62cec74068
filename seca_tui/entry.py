"""The ``seca-tui`` command. Bare, it starts the TUI without importing the CLI (Typer, every command's
module, the launcher): a fifth of a second of a start that a user waits through on every launch. With
arguments it is the CLI (seca_tui/cli.py), whose ``seca-tui --home H`` starts the same TUI."""
from __future__ import annotations

import sys


def tui() -> None:
    """The TUI on the home that ``SECA_TUI_HOME`` names (else the default home)."""
    from seca_tui.app import SecaApp

    SecaApp().run()


def main() -> None:
    """The console script."""
    if len(sys.argv) == 1:
        tui()
    else:
        from seca_tui.cli import main as cli

        cli()
