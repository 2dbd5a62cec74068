"""seca-tui: a terminal experiment manager for SECA continual-learning runs.

The manager never imports torch at import time: the CLI must start fast over SSH.
"""

__version__ = "0.1.0"
