"""``python -m seca_tui``: the same as the ``seca-tui`` command."""
from seca_tui.entry import main

main()
