"""Commands that live outside ``cli.py``, one module per command group; each registers itself on
``seca_tui.cli.app`` when ``cli.py`` imports it."""
