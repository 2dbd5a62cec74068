"""The user's text (run names, tags, notes) holding markup-like brackets shows as typed on every screen
and never acts or crashes the app (Pilot, with toasts on: ``run_test`` turns them off by default)."""
from __future__ import annotations

import pytest
from textual.widgets import DataTable, Label

from seca_tui.app import SecaApp
from seca_tui.screens.compare import CompareScreen
from seca_tui.screens.live import LiveScreen
from seca_tui.screens.notes import NotesScreen
from tests.test_tui_fixtures import engine_runs  # noqa: F401 - the session fixture, found by pytest here
from tests.test_tui_fixtures import ingest, make_run, run_app, wait_for

# What Textual's markup would read as a style, a closing tag, an action, or an error.
HOSTILE = ["[b]", "[/]", "[@click=app.quit]", "x [/b]", "seca [trial-3]"]


def toasts(app: SecaApp) -> list[str]:
    """The notifications on screen, as drawn."""
    return [toast.render().plain for toast in app.screen.query("Toast")]


def cells(table: DataTable, column: int) -> list[str]:
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_the_users_text_shows_as_typed_and_never_acts(home, engine_runs, size):
    for i, name in enumerate(HOSTILE):
        make_run(home, f"m{i}", engine_runs["alpha"], name=name, created=1000.0 + i)
    store = ingest(home)
    for i, name in enumerate(HOSTILE):
        store.set_tags(f"m{i}", [name.replace(" ", "")])
        store.set_notes(f"m{i}", name)
    newest_first = HOSTILE[::-1]

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=size, notifications=True) as pilot:
            table = app.browser.table
            await wait_for(pilot, lambda: table.row_count == len(HOSTILE), what="the rows")
            await pilot.pause()
            assert cells(table, 1) == newest_first
            await pilot.press("A")  # archived runs stay listed, so the cursor keeps its row
            for row, name in enumerate(newest_first):
                table.select(table.runs[row]["run_id"])
                await pilot.press("x")  # a finished run cannot be cancelled: the warning quotes its name
                await wait_for(pilot, lambda: any(f"{name} is finished" in t for t in toasts(app)),
                               what=f"the cancel warning about {name!r}")
                await pilot.press("a")
                await wait_for(pilot, lambda: any(f"Archived {name}" in t for t in toasts(app)),
                               what=f"the archive note about {name!r}")
                await pilot.press("t")
                await wait_for(pilot, lambda: isinstance(app.screen, NotesScreen), what="the notes dialog")
                assert str(app.screen.query_one(Label).render()) == f"Tags and notes of {name}"
                await pilot.press("escape")
                await wait_for(pilot, lambda: table.row_count == len(HOSTILE) and
                               all("(archived)" in c for c in cells(table, 1)[: row + 1]), what="the archived rows")
            assert cells(table, 1) == [f"{n} (archived)" for n in newest_first]

            # the command palette lists runs by name
            await pilot.press("ctrl+p")
            await pilot.press(*"Open run")
            await pilot.pause(0.5)
            await pilot.press("escape")

            # compare: the names as the metrics table's rows and the config diff's columns
            for row in range(2):
                table.select(table.runs[row]["run_id"])
                await pilot.press("space")
            await pilot.press("c")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and
                           app.screen.query_one("#metrics", DataTable).row_count == 2, what="the compare tables")
            assert sorted(cells(app.screen.query_one("#metrics", DataTable), 0)) == sorted(newest_first[:2])
            await pilot.press("2")
            await pilot.pause()
            diff = app.screen.query_one("#config-diff", DataTable)
            assert {str(c.label) for c in diff.columns.values()} >= set(newest_first[:2])
            await pilot.press("escape")

            # the live screen: the name in its header
            for name in HOSTILE:
                app.open_run(f"m{HOSTILE.index(name)}")
                await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.updates > 0,
                               what="the live screen")
                await pilot.pause()
                assert str(app.screen.query_one("#run-header").content).startswith(name)
                await pilot.press("escape")
            assert app.is_running  # [@click=app.quit] never acted

    run_app(scenario)
