"""Save the figure of what a screen shows (seca_tui/plots.py) as a PDF under ``<home>/figures/``, on a
worker thread (matplotlib takes a second to import and draw), and say where it went."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

from textual.screen import Screen

from engine import paths
from engine.config import ConfigError
from seca_tui.store import Store


def figure_path(home: Path, kind: str, run_ids: Sequence[str]) -> Path:
    """``<home>/figures/<run id or "N-runs">-<kind>-<time>.pdf``; the folder is made."""
    folder = home / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    who = run_ids[0] if len(run_ids) == 1 else f"{len(run_ids)}-runs"
    return folder / f"{who}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}.pdf"


def save_figure(screen: Screen, kind: str, run_ids: Sequence[str], group_by: Sequence[str] | None = None) -> None:
    """Draw ``kind`` for ``run_ids`` and save it; a notification gives the path (or why not)."""
    app = screen.app
    home = Path(app.home or paths.home())

    def work() -> None:
        from seca_tui import plots  # matplotlib: only when a figure is asked for

        store = Store.open(home)
        try:
            runs = [store.run(r) for r in run_ids]
            data = {r: plots.load(store, r) for r in run_ids}
            path = plots.save(plots.figure(kind, runs, data, group_by), figure_path(home, kind, run_ids))
            app.call_from_thread(app.notify, f"Saved the {kind} figure to {path}", timeout=8)
        except (ConfigError, OSError) as e:
            app.call_from_thread(app.notify, f"No figure saved: {e}", severity="warning")
        finally:
            store.close()

    if not run_ids:
        app.notify("No runs to draw.", severity="warning")
        return
    app.notify(f"Drawing the {kind} figure…", timeout=2)
    screen.run_worker(work, thread=True, group="figure", name=f"figure:{kind}")
