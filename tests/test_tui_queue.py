"""The run queue in the TUI: queued runs in the browser, queueing from the new run form, cancelling
a queued run, and the browser's refresh starting queued runs when a device frees up (Pilot)."""
from __future__ import annotations

import sys

import pytest

from seca_tui import launcher, queue
from seca_tui.app import SecaApp
from seca_tui.screens.confirm import ConfirmScreen
from seca_tui.screens.live import LiveScreen
from seca_tui.screens.new_run import NewRunScreen
from seca_tui.screens.runs import RunsScreen
from tests.test_tui_fixtures import engine_runs  # noqa: F401 - the session fixture, found by pytest here
from tests.test_tui_fixtures import events_of, fake_engine, ingest, last_of, make_run, run_app, wait_for


def cells(app: SecaApp, index: int) -> dict[str, str]:
    """The browser's row ``index``, by column key."""
    table = app.browser.table
    return dict(zip(table.headers, map(str, table.get_row_at(index))))


def row(app: SecaApp, name: str) -> dict[str, str] | None:
    """The browser's row of the run called ``name``."""
    return next((cells(app, i) for i in range(app.browser.table.row_count) if cells(app, i)["name"] == name), None)


def notified(app: SecaApp, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


@pytest.fixture
def busy_home(home, engine_runs, monkeypatch):
    """One queue device ("cpu"), held by a running run; queued runs start through the real launcher and
    queue, with a stand-in engine that writes the session's real tiny run (the engine itself is tested
    elsewhere; here it would add seconds per run). Returns the home and the blocker's process."""
    monkeypatch.setenv("SECA_TUI_GPUS", "cpu")  # whatever GPUs this machine has
    schedulers = []
    monkeypatch.setattr(queue, "ensure_scheduler", lambda home=None, poll=queue.POLL_S: schedulers.append(home))
    source = engine_runs["alpha"] / "events.jsonl"
    real_spawn = launcher.spawn

    def spawn(run_dir, resume=False, command=None, devices=None):
        script = f"import shutil, sys; shutil.copyfile({str(source)!r}, sys.argv[1] + '/events.jsonl')"
        return real_spawn(run_dir, resume, [sys.executable, "-c", script, str(run_dir)], devices)

    monkeypatch.setattr(launcher, "spawn", spawn)
    blocker, _ = make_run(home, "r-busy", engine_runs["alpha"], name="busy", stop_after=("eval", 0))
    proc = fake_engine(blocker)
    store = ingest(home)
    store.update_run("r-busy", device="cpu")
    yield home, proc, schedulers
    proc.kill()
    proc.wait()


async def queue_from_form(pilot, app: SecaApp, name: str) -> None:
    """n, the tiny preset and a name, ctrl+o ticks "queue", ctrl+s submits: back to the browser."""
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what="the form")
    form = app.screen
    form.query_one("#preset").value = "tiny"
    form.query_one("#name").value = name
    await pilot.press("ctrl+o")
    assert form.queued and str(form.query_one("#launch").label) == "Queue"
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), timeout=10, what="back to the runs")
    await wait_for(pilot, lambda: row(app, name) is not None, what=f"{name} in the table")


def test_queue_cancel_and_start_from_the_tui(busy_home):
    home, blocker, schedulers = busy_home

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: row(app, "busy") is not None, what="the busy run")
            assert (row(app, "busy")["status"], row(app, "busy")["device"]) == ("running", "cpu")
            await pilot.press("x")  # a running run is not cancelled, and nothing is asked
            assert not isinstance(app.screen, ConfirmScreen) and notified(app, "only a queued run can be cancelled")

            await queue_from_form(pilot, app, "first")
            assert (row(app, "first")["status"], row(app, "first")["device"]) == ("queued", "any")
            assert notified(app, "Queued first") and schedulers == [home]  # handed to a background scheduler too

            await wait_for(pilot, lambda: cells(app, app.browser.table.cursor_index)["name"] == "first",
                           what="the cursor on the queued run")
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")  # no: still queued
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: row(app, "first")["status"] == "cancelled", what="the cancelled status")
            assert notified(app, "Cancelled first")

            await queue_from_form(pilot, app, "second")
            await pilot.pause(2.5)  # a refresh with the device still busy: the run keeps waiting
            assert row(app, "second")["status"] == "queued"
            blocker.kill()  # the busy run's process ends: its device frees, the browser's refresh starts "second"
            await wait_for(pilot, lambda: row(app, "second")["status"] == "finished", timeout=20,
                           what="the queued run to start and finish")
            assert notified(app, "Started queued run second on cpu") and row(app, "first")["status"] == "cancelled"
            second = app.browser.table.runs[[r["name"] for r in app.browser.table.runs].index("second")]
            final = last_of(events_of(home / "runs" / second["run_id"]), "run_finished")
            assert row(app, "second")["device"] == "cpu" and row(app, "second")["last"] == f"{final['last']:.1f}"

            # the device is free now: a queued run starts at once, and the form shows it live
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what="the form")
            app.screen.query_one("#preset").value = "tiny"
            app.screen.query_one("#name").value = "third"
            await pilot.press("ctrl+o", "ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen), timeout=10, what="the live screen")
            assert notified(app, "Started third on cpu") and schedulers == [home, home]

    run_app(scenario)
