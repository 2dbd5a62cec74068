"""A seeded random walk over every screen at 80×24 and 120×40, over real engine runs: whatever a user
presses, in whatever order, the app raises nothing and never hangs. Every key of every screen's
bindings is in the walk, plus movement and typing; only ctrl+q (quit) and ctrl+s (the new-run form's
launch, which starts an engine) are left out."""
from __future__ import annotations

import asyncio
import random

import pytest

from seca_tui.app import SecaApp
from tests.test_tui_fixtures import TINY_RUNS, engine_runs  # noqa: F401 - the session fixture, found by pytest here
from tests.test_tui_fixtures import ingest, make_run, run_app

KEYS = ["n", "escape", "enter", "c", "space", "tab", "shift+tab", "down", "up", "left", "right", "pagedown", "pageup",
        "home", "end", "1", "2", "3", "4", "5", "6", "left_square_bracket", "right_square_bracket", "f", "k", "d", "g",
        "e", "o", "O", "p", "r", "R", "s", "question_mark", "slash", "a", "A", "t", "x", "y", "f2", "ctrl+t", "ctrl+o",
        "ctrl+p", "backspace", "x", "1", "="]
PRESSES = 160


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("seed", [1, 2])
def test_random_keys_on_every_screen_raise_nothing_and_never_hang(home, engine_runs, size, seed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # exports and saved figures land here
    for i, name in enumerate(TINY_RUNS):
        make_run(home, f"r{i}", engine_runs[name], name=name, created=1000.0 + i)
    ingest(home)
    keys = random.Random(seed).choices(KEYS, k=PRESSES)
    screens = set()

    async def walk():
        app = SecaApp(home)
        async with app.run_test(size=size, notifications=True) as pilot:
            await pilot.pause(0.5)
            for key in keys:
                await pilot.press(key)
                screens.add(type(app.screen).__name__)
            await pilot.pause(0.5)

    async def scenario():
        await asyncio.wait_for(walk(), timeout=240)  # a hang fails here instead of stalling CI

    run_app(scenario)
    # the walk got around: the browser and at least a few of the other screens
    assert "RunsScreen" in screens and len(screens) >= 3, screens
