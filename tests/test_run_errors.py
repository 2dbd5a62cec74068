"""Why a run failed is where people look: `error` in show/runs --json and export --all, the error and
the engine's last lines at the top of the live screen's first tab, the error under the browser's table."""
from __future__ import annotations

import csv
import json


from seca_tui.app import SecaApp
from seca_tui.screens.live import LiveScreen
from tests.commands import ok
from tests.runlog import run_events, write_run
from tests.test_tui_fixtures import ingest, run_app, wait_for

ERROR = "Out of GPU memory at batch size 64 [cuda:0]; try --set train.batch_size=32."
LOG = ["loading model seca-tiny", "task 1/3 started", "RuntimeError: CUDA out of memory"]


def failed_run(home) -> str:
    events = run_events([[50.0], [40.0, 60.0]], [4, 4, 4], finish=False)
    events.append(("run_failed", {"error": ERROR, "traceback": "Traceback (most recent call last): ..."}))
    run_dir = write_run(home / "runs", "f1", events)
    (run_dir / "engine.log").write_text("\n".join(LOG) + "\n")
    ingest(home)
    return "f1"


def test_the_error_is_in_every_record(home):
    run_id = failed_run(home)
    assert json.loads(ok("show", run_id, "--json"))["error"] == ERROR
    assert [r["error"] for r in json.loads(ok("runs", "--json"))] == [ERROR]
    (row,) = csv.DictReader(ok("export", "--all", "--csv", "-").splitlines())
    assert row["status"] == "failed" and row["error"] == ERROR


def test_the_tui_shows_why_a_run_failed(home):
    run_id = failed_run(home)

    async def scenario():
        tui = SecaApp(home)
        async with tui.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: tui.browser.table.row_count == 1, what="the row")
            await pilot.pause()
            assert str(tui.browser.query_one("#runs-summary").render()) == f"failed: {ERROR}"
            tui.open_run(run_id)
            await wait_for(pilot, lambda: isinstance(tui.screen, LiveScreen) and tui.screen.updates > 0,
                           what="the live screen")
            failure = tui.screen.query_one("#failure")
            await wait_for(pilot, lambda: "RuntimeError" in str(failure.content), what="the log lines")
            assert str(failure.content).splitlines() == [f"failed: {ERROR}", *(f"  {line}" for line in LOG)]
            assert failure.display and failure.region.y <= 4  # the first thing under the header and tabs

    run_app(scenario)
