"""Where seca-tui keeps its things: the run home and the default dataset roots. Imports nothing heavy."""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``SECA_TUI_HOME``, else ``$XDG_DATA_HOME/seca-tui`` (``~/.local/share/seca-tui``)."""
    if os.environ.get("SECA_TUI_HOME"):
        return Path(os.environ["SECA_TUI_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(xdg) / "seca-tui"


def data_root(dataset: str, root: str = "") -> Path:
    """A dataset's folder: the configured root, else ``SECA_TUI_DATA/<dataset>``, else ``<home>/data/<dataset>``."""
    if root:
        return Path(root).expanduser()
    base = os.environ.get("SECA_TUI_DATA")
    return (Path(base).expanduser() if base else home() / "data") / dataset
