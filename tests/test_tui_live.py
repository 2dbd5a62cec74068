"""The live run screen: every panel shows the run's numbers, events appended later arrive, and a real
engine run started while the screen is open fills it in (Pilot)."""
from __future__ import annotations

import json
import re
import sys

import pytest

from seca_tui import launcher
from seca_tui.app import SecaApp
from seca_tui.process import HOST
from seca_tui.screens.confirm import ConfirmScreen
from seca_tui.screens.live import LiveScreen
from seca_tui.widgets.bar_list import BarList
from seca_tui.widgets.heatmap import Heatmap
from seca_tui.widgets.line_chart import LineChart
from seca_tui.store import Store
from tests.test_tui_fixtures import engine_runs  # noqa: F401 - the session fixture, found by pytest here
from tests.test_tui_fixtures import (
    append_events, events_of, fake_engine, ingest, last_of, make_run, run_app, split_after, wait_for,
)


def toasts(app: SecaApp) -> list[str]:
    return [toast.render().plain for toast in app.screen.query("Toast")]


def text(app: SecaApp, selector: str) -> str:
    return str(app.screen.query_one(selector).content)


async def open_live(pilot, app: SecaApp, run_id: str) -> LiveScreen:
    await wait_for(pilot, lambda: app.browser.table.row_count > 0, what="the runs table")
    app.open_run(run_id)
    await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.updates > 0,
                   what="the first live update")
    return app.screen


def matrix_cells(evals: list[dict], n_tasks: int) -> list[list[str]]:
    """The accuracy matrix as the heatmap prints it, from the run's eval events."""
    return [[f"{a:.1f}" for a in e["task_acc"]] + [""] * (n_tasks - len(e["task_acc"])) for e in evals]


def pool_columns(cols: list[str]) -> list[str]:
    """Pool labels ("task 0", 0-based in events) as the relevance heatmap's columns, named like the
    matrix's tasks, 1-based for people (T1)."""
    return [f"T{int(c.split()[-1]) + 1}" for c in cols]


def test_every_panel_shows_the_run(home, engine_runs):
    run_dir, _ = make_run(home, "r1", engine_runs["alpha"], name="alpha")
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
            assert matrix.row_labels == matrix.col_labels == ["T1", "T2", "T3"]
            assert "finished" in text(app, "#run-header") and "task 3/3" in text(app, "#run-header")
            final = last_of(events, "run_finished")
            assert text(app, "#summary") == "  ·  ".join(
                f"{label} {final[key]:.1f}" for label, key in (("Last", "last"), ("Avg", "avg"),
                                                               ("Forgetting", "forgetting"), ("BWT", "bwt")))
            took = final["ts"] - events[0]["ts"]  # wall time from the engine's first event (its start-up)
            assert f"took {round(took)}s" in text(app, "#run-header")  # a tiny run takes seconds
            forgetting = [(f"T{i + 1}", max(r[i] for r in rows[i:-1]) - rows[-1][i]) for i in range(2)]
            assert screen.query_one("#forgetting", BarList).items == forgetting

            heatmap = screen.query_one("#relevance-map", Heatmap)
            assert heatmap.row_labels == relevance["rows"]
            assert heatmap.col_labels == pool_columns(relevance["cols"])
            assert heatmap.cells == [[f"{v:.2f}" for v in row] for row in relevance["values"]]
            assert screen.query_one("#utility", BarList).items == list(zip(pool_columns(relevance["cols"]),
                                                                          relevance["utility"]))
            assert f"pool after task {pool['task'] + 1}: {', '.join(pool_columns(pool['kept']))}" in text(app, "#pool")
            if pool["pruned"]:
                assert f"pruned: {pool_columns([pool['pruned']])[0]}" in text(app, "#pool")

            heatmap = screen.query_one("#affinity-map", Heatmap)
            assert heatmap.row_labels == [f"{i} {name}" for i, name in enumerate(affinity["labels"])]
            assert heatmap.cells == [[f"{v:.2f}" for v in row] for row in affinity["values"]]
            await pilot.press("f")  # every class at full size (a tiny run's 6 fit either way)
            assert screen.query_one("#panels").active == "affinity" and heatmap.max_size is None

            acc = screen.query_one("#acc-chart", LineChart)
            assert acc.series["A_t"] == ([1, 2, 3], [e["acc"] for e in events if e["type"] == "eval"])
            assert acc.series["T1"] == ([1, 2, 3], [row[0] for row in rows])
            assert f"SG-AKT relevance · task {relevance['task'] + 1}" in str(screen.query_one("#relevance-map").border_title)
            assert f"SE-VPR affinity · task {affinity['task'] + 1}" in str(screen.query_one("#affinity-map").border_title)
            losses = screen.query_one("#loss-chart", LineChart)
            assert set(losses.series) == loss_names
            assert len(losses.series["total"][0]) == sum(e["type"] == "step" for e in events)
            log = (run_dir / "engine.log").read_text().splitlines()
            assert screen.query_one("#engine-log").lines[-1] == log[-1]

    run_app(scenario)


def offered(app: SecaApp) -> list[str]:
    """What the footer offers, by description."""
    return [str(key.description) for key in app.screen.query("FooterKey")]


def test_the_footer_offers_stop_and_resume_only_when_they_apply(home, engine_runs):
    make_run(home, "done", engine_runs["alpha"], name="done")
    run_dir, _ = make_run(home, "live", engine_runs["alpha"], name="live", stop_after=("eval", 0))
    proc = fake_engine(run_dir)
    ingest(home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            await open_live(pilot, app, "done")
            await wait_for(pilot, lambda: "finished" in text(app, "#run-header"), what="the finished run")
            await pilot.pause()
            assert "Back" in offered(app) and "Stop" not in offered(app) and "Resume" not in offered(app)
            await pilot.press("s")  # not offered, and nothing happens
            assert not isinstance(app.screen, ConfirmScreen)
            await pilot.press("escape")
            await open_live(pilot, app, "live")
            await wait_for(pilot, lambda: "running" in text(app, "#run-header"), what="the running run")
            await pilot.pause()
            assert "Stop" in offered(app) and "Resume" not in offered(app)

    try:
        run_app(scenario)
    finally:
        proc.kill()
        proc.wait()


def test_every_accuracy_panel_is_reached_by_paging_at_80x24(home, engine_runs):
    """Stacked on a small terminal, the chart, the matrix and the forgetting bars come into view with
    PgDn (or j), with no widget to focus first."""
    make_run(home, "r1", engine_runs["alpha"], name="alpha")
    ingest(home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_live(pilot, app, "r1")
            await wait_for(pilot, lambda: len(screen.query_one("#matrix", Heatmap).cells) == 3, what="the matrix")
            seen = set()
            for _ in range(12):
                await pilot.pause()
                for panel in ("#acc-chart", "#matrix", "#forgetting"):
                    region = screen.query_one(panel).region
                    if region.height and 0 < region.y and region.bottom <= 23:
                        seen.add(panel)
                await pilot.press("pagedown" if len(seen) < 2 else "j")
            assert seen == {"#acc-chart", "#matrix", "#forgetting"}

    run_app(scenario)


def test_appended_events_reach_the_panels(home, engine_runs):
    """Write part of a real run, open it, append the rest as the engine did: the panels follow, one
    chosen event at a time (a real engine is too quick to stop at each)."""
    run_dir, pending = make_run(home, "r1", engine_runs["alpha"], name="alpha", stop_after=("eval", 0))
    proc = fake_engine(run_dir)
    ingest(home)
    trained, pending = split_after(pending, "pool", 1)  # task 1 trained, its relevance out, not evaluated
    evaluated, pending = split_after(pending, "eval", 1)
    last_step = [e for e in trained if e["type"] == "step"][-1]
    last_step["gpu_mem"] = 3.5 * 2**30  # what a CUDA engine adds to its steps (bytes); a CPU run has none

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await open_live(pilot, app, "r1")
            matrix = screen.query_one("#matrix", Heatmap)
            await wait_for(pilot, lambda: len(matrix.cells) == 1, what="task 0's row")
            assert "running" in text(app, "#run-header") and "task 1/3" in text(app, "#run-header")
            first = last_of(events_of(run_dir), "eval")
            assert text(app, "#summary").startswith(f"after task 1:  A_1 {first['acc']:.1f}  ·  Avg {first['acc']:.1f}")

            append_events(run_dir, trained)
            await wait_for(pilot, lambda: "task 2/3" in text(app, "#run-header"), what="task 1 in the header")
            header = text(app, "#run-header")
            assert "ETA" in header and f"{last_step['ips']:,.0f} img/s" in header and "GPU 3.5 GiB" in header
            assert screen.query_one("#relevance-map", Heatmap).row_labels == last_of(trained, "relevance")["rows"]

            append_events(run_dir, evaluated)
            await wait_for(pilot, lambda: len(matrix.cells) == 2, timeout=10.0, what="task 1's row")
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


def test_the_header_says_what_the_engine_does_while_it_starts_and_counts_the_wall_time(home, engine_runs):
    """A real run's events written one stretch at a time: the data, the model, building task 1 (phase
    events, before and after run_started) show in the header until the first step; meanwhile the wall
    time since the engine's first event counts on without events ("elapsed"), and at the end it is how
    long the run took from that first event, not from run_started."""
    run_dir, pending = make_run(home, "r1", engine_runs["alpha"], name="alpha", stop_after=("phase", None))
    proc = fake_engine(run_dir)
    Store.open(home).register(run_dir, status="running", pid=proc.pid, host=HOST)  # as the launcher records it
    first = events_of(run_dir)[0]
    phases = [e for e in pending if e["type"] == "phase"]
    model, pending = split_after(pending, "phase", None)
    built, pending = split_after(pending, "phase", 0)
    stepping, pending = split_after(pending, "step", 0)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            await open_live(pilot, app, "r1")
            assert f"{first['message']}…" in text(app, "#run-header")
            assert Store.open(home).run("r1")["started"] == first["ts"]
            clock = re.search(r"elapsed (\S+)", text(app, "#run-header")).group(1)
            await wait_for(pilot, lambda: f"elapsed {clock}" not in text(app, "#run-header"), what="the clock")
            for chunk, shown in ((model, phases[0]), (built, phases[1])):
                append_events(run_dir, chunk)
                await wait_for(pilot, lambda: f"{shown['message']}…" in text(app, "#run-header"), what=shown["phase"])
            assert shown["message"].startswith("building task 1") and "task 1/3" in text(app, "#run-header")
            append_events(run_dir, stepping)
            await wait_for(pilot, lambda: "img/s" in text(app, "#run-header"), what="the first step")
            assert "…" not in text(app, "#run-header")
            append_events(run_dir, pending)
            await wait_for(pilot, lambda: "finished" in text(app, "#run-header"), what="the end")
            assert f"took {round(pending[-1]['ts'] - first['ts'])}s" in text(app, "#run-header")
            assert "elapsed" not in text(app, "#run-header") and "…" not in text(app, "#run-header")

    try:
        run_app(scenario)
    finally:
        proc.kill()
        proc.wait()


def test_stop_asks_first_and_resume_calls_the_launcher_directly_or_through_the_queue(home, engine_runs, monkeypatch):
    """The engine is a stand-in process (a real one finishes the tiny run before a key arrives), so
    the run_stopped event it would write on SIGTERM is written here."""
    run_dir, _ = make_run(home, "r1", engine_runs["alpha"], name="alpha", stop_after=("eval", 0))
    proc = fake_engine(run_dir)
    ingest(home)
    resumed = []
    monkeypatch.setattr(launcher, "resume", lambda run_id, store=None, queued=False: resumed.append((run_id, queued)))

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
            await wait_for(pilot, lambda: resumed == [("r1", False)], what="resume")
            await pilot.press("R")  # through the run queue
            await wait_for(pilot, lambda: resumed == [("r1", False), ("r1", True)], what="resume in the queue")

    try:
        run_app(scenario)
    finally:
        proc.kill()
        proc.wait()


def test_an_action_rereads_the_run_before_the_next_key(home, engine_runs, monkeypatch):
    """r then s at once: s asks to stop the run r just resumed, instead of answering from the stopped
    status of before. The resumed engine is a process that writes no events (as a real one loading its
    model for seconds), so only the action's own re-read can tell the screen that the run runs."""
    run_dir, _ = make_run(home, "r1", engine_runs["alpha"], name="alpha", stop_after=("eval", 0))
    seq = sum(1 for _ in (run_dir / "events.jsonl").open())
    append_events(run_dir, [{"v": 1, "seq": seq, "ts": 0.0, "type": "run_stopped", "after_task": 0}])
    ingest(home)
    monkeypatch.setattr(launcher, "engine_command", lambda run_dir, resume=False, nproc=1: [
        sys.executable, "-c", "import time; time.sleep(60)", str(run_dir)])

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            screen = await open_live(pilot, app, "r1")
            await wait_for(pilot, lambda: "stopped" in text(app, "#run-header"), what="the stopped status")
            await pilot.press("r")
            await wait_for(pilot, lambda: any("Resuming" in t for t in toasts(app)), what="the resume")
            await pilot.press("s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the stop question")
            await pilot.press("y")
            await wait_for(pilot, lambda: any("Stop requested" in t for t in toasts(app)), what="the stop")
            assert screen.run.get("stop_requested") and not any("nothing to stop" in t for t in toasts(app))

    run_app(scenario)


@pytest.mark.slow
def test_panels_follow_a_real_engine_run(home, engine_runs, monkeypatch):
    """The screen is open before the engine starts; while it runs the matrix grows row by row, and at
    the end every panel holds what the engine wrote. 20 epochs make the tiny run train for seconds."""
    monkeypatch.setenv("SECA_TUI_DATA", str(engine_runs.data))  # the session's rendered shapes-r
    handle = launcher.create_run("tiny", ["train.epochs=20"], name="live", home=home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_live(pilot, app, handle.run_id)
            matrix = screen.query_one("#matrix", Heatmap)
            relevance_map = screen.query_one("#relevance-map", Heatmap)
            pid = launcher.start(handle.run_dir, store=Store.open(home))
            seen: set[tuple[str, int]] = set()  # (status, matrix rows) as the screen showed them

            def done() -> bool:
                status = screen.run.get("status") or ""
                seen.add((status, len(matrix.cells)))
                return status == "finished" and len(matrix.cells) == 3 and relevance_map.row_labels != []
            await wait_for(pilot, done, timeout=180, what="the real run to finish on screen")
            assert any(status == "running" and 0 < rows < 3 for status, rows in seen), seen

            events = events_of(handle.run_dir)
            assert events[-1]["type"] == "run_finished" and last_of(events, "run_started")["env"]["pid"] == pid
            evals = [e for e in events if e["type"] == "eval"]
            assert matrix.cells == matrix_cells(evals, 3)
            relevance = last_of(events, "relevance")
            assert relevance_map.row_labels == relevance["rows"]
            assert relevance_map.col_labels == pool_columns(relevance["cols"])
            assert relevance_map.cells == [[f"{v:.2f}" for v in row] for row in relevance["values"]]
            assert screen.query_one("#utility", BarList).items == list(zip(pool_columns(relevance["cols"]),
                                                                          relevance["utility"]))
            assert f"task {relevance['task'] + 1}" in str(relevance_map.border_title)
            header = text(app, "#run-header")
            assert "finished" in header and "task 3/3" in header and "epoch 20/20" in header
            final = last_of(events, "run_finished")
            assert f"mean {final['forgetting']:.1f}" in str(screen.query_one("#forgetting", BarList).border_title)

    run_app(scenario)


def test_heatmaps_step_back_through_earlier_tasks(home, engine_runs):
    """[ and ] show the relevance and the affinity of earlier tasks; back at the newest they follow it."""
    run_dir, _ = make_run(home, "r1", engine_runs["alpha"], name="alpha")
    ingest(home)
    events = events_of(run_dir)
    relevance = {e["task"]: e for e in events if e["type"] == "relevance"}
    affinity = {e["task"]: e for e in events if e["type"] == "affinity"}

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_live(pilot, app, "r1")
            rel, aff = screen.query_one("#relevance-map", Heatmap), screen.query_one("#affinity-map", Heatmap)
            await wait_for(pilot, lambda: rel.cells and aff.cells, what="both heatmaps")
            await pilot.press("2")
            newest = max(relevance)
            assert str(rel.border_title) == f"SG-AKT relevance · task {newest + 1}"
            await pilot.press("left_square_bracket")
            earlier = sorted(relevance)[-2]
            assert str(rel.border_title).startswith(f"SG-AKT relevance · task {earlier + 1} (earlier")
            assert rel.cells == [[f"{v:.2f}" for v in row] for row in relevance[earlier]["values"]]
            assert rel.col_labels == pool_columns(relevance[earlier]["cols"])
            await pilot.press("left_square_bracket", "left_square_bracket")  # no earlier one: it stays
            assert str(rel.border_title).startswith(f"SG-AKT relevance · task {min(relevance) + 1}")
            await pilot.press("3", "left_square_bracket", "left_square_bracket")
            first = sorted(affinity)[-3]
            assert str(aff.border_title).startswith(f"SE-VPR affinity · task {first + 1}")
            assert aff.cells == [[f"{v:.2f}" for v in row] for row in affinity[first]["values"]]
            await pilot.press("right_square_bracket", "right_square_bracket")
            assert str(aff.border_title) == f"SE-VPR affinity · task {max(affinity) + 1}"

    run_app(scenario)


def test_f_shows_every_class_of_a_large_affinity(home, engine_runs):
    """Up to 200 classes one cell each at full size (f), averaged into blocks to fit the screen otherwise."""
    run_dir, _ = make_run(home, "r1", engine_runs["alpha"], name="alpha")
    n = 150
    seq = sum(1 for _ in (run_dir / "events.jsonl").open())
    big = {"v": 1, "seq": seq, "ts": 0.0, "type": "affinity", "task": 2, "labels": [f"class {i}" for i in range(n)],
           "values": [[round(((i * 7 + j) % 10) / 10, 2) for j in range(n)] for i in range(n)]}
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "events.jsonl").write_text("".join(lines[:-1]) + json.dumps(big) + "\n"
                                          + json.dumps({**json.loads(lines[-1]), "seq": seq + 1}) + "\n")
    ingest(home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_live(pilot, app, "r1")
            heatmap = screen.query_one("#affinity-map", Heatmap)
            await pilot.press("3")
            await wait_for(pilot, lambda: heatmap.block_note.startswith(f"{n}×{n} averaged"), what="the fitted map")
            await pilot.press("f")
            assert len(heatmap.cells) == n and all(len(row) == n for row in heatmap.cells)
            assert heatmap.row_labels[n - 1] == f"{n - 1} class {n - 1}" and heatmap.block_note == ""

    run_app(scenario)


def test_a_ten_task_accuracy_chart_names_its_curves_beside_the_plot(home):
    """At 120×40 the A_t chart of a 10-task run names its 11 curves (A_t, T1…T10) one per line, to the
    right of every plotted point: plotext's own legend sat over the data's top-left corner."""
    import re

    from tests.runlog import CONFIG, run_events, write_run

    n = 10
    matrix = [[90.0 - 4 * (t - i) - i for i in range(t + 1)] for t in range(n)]
    write_run(Store.open(home).runs_dir, "r10", run_events(matrix, [10] * n, {**CONFIG, "scenario": {"n_tasks": n}}))
    ingest(home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await open_live(pilot, app, "r10")
            chart = screen.query_one("#acc-chart", LineChart)
            await wait_for(pilot, lambda: len(chart.series) == n + 1, what="A_t and ten task curves")
            await pilot.pause(0.6)  # the throttled redraw
            lines = [chart.render_line(y).text for y in range(chart.size.height)]
            points = [x for line in lines for x, char in enumerate(line) if 0x2800 < ord(char) <= 0x28FF]
            assert points, "\n".join(lines)
            found = {}
            for name in ["A_t", *(f"T{i + 1}" for i in range(n))]:
                at = [(y, m.start()) for y, line in enumerate(lines) if y  # line 0: the title, "A_t and …"
                      for m in re.finditer(f"(?<= ){name}(?= |$)", line)]
                assert len(at) == 1, (name, at)
                found[name] = at[0]
            assert min(x for _, x in found.values()) > max(points), "\n".join(lines)
            assert len({y for y, _ in found.values()}) == n + 1  # one line each

    run_app(scenario)
