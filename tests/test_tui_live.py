"""The live run screen: every panel shows the run's numbers, and events appended later arrive (Pilot)."""
from __future__ import annotations

from seca_tui import launcher
from seca_tui.app import SecaApp
from seca_tui.screens.confirm import ConfirmScreen
from seca_tui.screens.live import LiveScreen
from seca_tui.widgets.bar_list import BarList
from seca_tui.widgets.heatmap import Heatmap
from seca_tui.widgets.line_chart import LineChart
from tests.test_tui_fixtures import (
    append_events, events_of, fake_engine, ingest, last_of, make_run, run_app, split_after, wait_for,
)


def text(app: SecaApp, selector: str) -> str:
    return str(app.screen.query_one(selector).content)


async def open_live(pilot, app: SecaApp, run_id: str) -> LiveScreen:
    await wait_for(pilot, lambda: app.browser.table.row_count > 0, what="the runs table")
    app.open_run(run_id)
    await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.updates > 0,
                   what="the first live update")
    return app.screen


def test_every_panel_shows_the_run(home):
    run_dir, _ = make_run(home, "r1", name="alpha")
    ingest(home)
    events = events_of(run_dir)
    rows = [e["task_acc"] for e in events if e["type"] == "eval"]
    relevance, pool, affinity = (last_of(events, t) for t in ("relevance", "pool", "affinity"))
    loss_names = {name for e in events if e["type"] == "step" for name in e["losses"]}

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_live(pilot, app, "r1")
            matrix = screen.query_one("#matrix", Heatmap)
            await wait_for(pilot, lambda: len(matrix.cells) == 3, what="the matrix")
            assert matrix.cells == [[f"{a:.1f}" for a in row] + [""] * (3 - len(row)) for row in rows]
            assert matrix.row_labels == matrix.col_labels == ["T0", "T1", "T2"]
            assert "finished" in text(app, "#run-header") and "task 3/3" in text(app, "#run-header")
            forgetting = [(f"T{i}", max(r[i] for r in rows[i:-1]) - rows[-1][i]) for i in range(2)]
            assert screen.query_one("#forgetting", BarList).items == forgetting

            heatmap = screen.query_one("#relevance-map", Heatmap)
            assert heatmap.row_labels == relevance["rows"]
            assert heatmap.col_labels == [c.replace("task ", "t") for c in relevance["cols"]]
            assert heatmap.cells == [[f"{v:.2f}" for v in row] for row in relevance["values"]]
            assert screen.query_one("#utility", BarList).items == list(zip(relevance["cols"], relevance["utility"]))
            assert ", ".join(pool["kept"]) in text(app, "#pool")

            heatmap = screen.query_one("#affinity-map", Heatmap)
            assert heatmap.row_labels == [f"{i} {name}" for i, name in enumerate(affinity["labels"])]
            assert heatmap.cells == [[f"{v:.2f}" for v in row] for row in affinity["values"]]

            acc = screen.query_one("#acc-chart", LineChart)
            assert acc.series["A_t"] == ([0, 1, 2], [e["acc"] for e in events if e["type"] == "eval"])
            assert acc.series["T0"] == ([0, 1, 2], [row[0] for row in rows])
            losses = screen.query_one("#loss-chart", LineChart)
            assert set(losses.series) == loss_names
            assert len(losses.series["total"][0]) == sum(e["type"] == "step" for e in events)
            log = (run_dir / "engine.log").read_text().splitlines()
            assert screen.query_one("#engine-log").lines[-1] == log[-1]

    run_app(scenario)


def test_appended_events_reach_the_panels(home):
    """Write part of a run, open it, append the rest as the engine would: the panels follow."""
    run_dir, pending = make_run(home, "r1", name="alpha", stop_after=("eval", 0))
    proc = fake_engine(run_dir)
    ingest(home)
    trained, pending = split_after(pending, "affinity", 1)  # task 1 trained, not evaluated
    evaluated, pending = split_after(pending, "eval", 1)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_live(pilot, app, "r1")
            matrix = screen.query_one("#matrix", Heatmap)
            await wait_for(pilot, lambda: len(matrix.cells) == 1, what="task 0's row")
            assert "running" in text(app, "#run-header") and "task 1/3" in text(app, "#run-header")

            append_events(run_dir, trained)
            await wait_for(pilot, lambda: "task 2/3" in text(app, "#run-header"), what="task 1 in the header")
            assert "ETA" in text(app, "#run-header") and "img/s" in text(app, "#run-header")
            assert screen.query_one("#relevance-map", Heatmap).row_labels == last_of(trained, "relevance")["rows"]

            append_events(run_dir, evaluated)
            await wait_for(pilot, lambda: len(matrix.cells) == 2, timeout=2.0, what="task 1's row")
            assert matrix.cells[1] == [f"{a:.1f}" for a in last_of(evaluated, "eval")["task_acc"]] + [""]

            with (run_dir / "engine.log").open("a") as log:
                log.write("a new log line\n")
            await wait_for(pilot, lambda: screen.query_one("#engine-log").lines[-1] == "a new log line",
                           what="the log tail")

            append_events(run_dir, pending)
            await wait_for(pilot, lambda: "finished" in text(app, "#run-header"), what="the end of the run")

    try:
        run_app(scenario)
    finally:
        proc.kill()
        proc.wait()


def test_stop_asks_first_and_resume_calls_the_launcher(home, monkeypatch):
    run_dir, _ = make_run(home, "r1", name="alpha", stop_after=("eval", 0))
    proc = fake_engine(run_dir)
    ingest(home)
    resumed = []
    monkeypatch.setattr(launcher, "resume", lambda run_id, store=None: resumed.append(run_id))

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            await open_live(pilot, app, "r1")
            await pilot.press("s")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("n")  # no: nothing happens
            assert proc.poll() is None
            await pilot.press("s", "y")
            await wait_for(pilot, lambda: proc.poll() is not None, what="SIGTERM to the engine")
            seq = sum(1 for _ in (run_dir / "events.jsonl").open())
            append_events(run_dir, [{"v": 1, "seq": seq, "ts": 0.0, "type": "run_stopped", "after_task": 0}])
            await wait_for(pilot, lambda: "stopped" in text(app, "#run-header"), what="the stopped status")
            await pilot.press("r")
            await wait_for(pilot, lambda: resumed == ["r1"], what="resume")

    try:
        run_app(scenario)
    finally:
        proc.kill()
        proc.wait()
