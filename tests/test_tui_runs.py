"""The runs browser: rows and numbers, filter, sort, tags/notes, archive, export, palette (Pilot)."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import sqlite3
import threading

import pytest
from rich.console import Console
from rich.text import Text
from textual import events

from seca_tui.app import SecaApp
from seca_tui.screens.live import LiveScreen
from seca_tui.screens.new_run import NewRunScreen
from seca_tui.store import Store
from seca_tui.widgets.runs_table import PADDING
from tests.test_tui_fixtures import engine_runs  # noqa: F401 - the session fixture, found by pytest here
from tests.test_tui_fixtures import append_events, events_of, fake_engine, ingest, last_of, make_run, run_app, wait_for


@pytest.fixture
def three_runs(home, engine_runs):
    """The session's engine runs alpha (seca), beta (hpeft), gamma (zeroshot), created in that order."""
    for i, name in enumerate(("alpha", "beta", "gamma")):
        make_run(home, f"r-{name}", engine_runs[name], name=name, created=1000.0 * (i + 1))
    ingest(home)
    return home


@contextlib.asynccontextmanager
async def browsing(home, size: tuple[int, int]):
    """The app at ``size`` on the runs browser, once the three runs' rows are in: ``(app, pilot)``."""
    app = SecaApp(home)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.browser.table.row_count == 3, what="three rows")
        yield app, pilot


def rows(app: SecaApp) -> list[list[str]]:
    table = app.browser.table
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def names(app: SecaApp) -> list[str]:
    return [row[1] for row in rows(app)]


def test_browser_lists_runs_with_their_numbers(three_runs):
    async def scenario():
        async with browsing(three_runs, (120, 40)) as (app, pilot):
            assert names(app) == ["gamma", "beta", "alpha"]  # newest first
            for row, run_id in zip(rows(app), ("r-gamma", "r-beta", "r-alpha")):
                events = events_of(three_runs / "runs" / run_id)
                started, final = last_of(events, "run_started"), last_of(events, "run_finished")
                assert row[2:10] == ["finished", "", started["config"]["method"], started["config"]["data"]["name"],
                                     str(len(started["tasks"])),
                                     *(f"{final[k]:.1f}" for k in ("last", "avg", "forgetting"))]
            assert [row[4] for row in rows(app)] == ["zeroshot", "hpeft", "seca"]
            assert "3 runs" in str(app.screen.query_one("#runs-summary").render())

    run_app(scenario)


def test_filter_by_text_and_status(three_runs):
    async def scenario():
        async with browsing(three_runs, (120, 40)) as (app, pilot):
            await pilot.press("slash", *"hpeft")
            await wait_for(pilot, lambda: names(app) == ["beta"], what="the filter to keep beta")
            await pilot.press(*["backspace"] * 5)
            await wait_for(pilot, lambda: app.browser.table.row_count == 3, what="the filter to clear")
            app.browser.query_one("#status").value = "running"
            await wait_for(pilot, lambda: app.browser.table.row_count == 0, what="no running runs")

    run_app(scenario)


def test_a_filter_typed_in_one_burst_lands_in_the_filter(three_runs):
    """"/" and the text after it in one read (pasted, or typed fast over SSH) all reach the filter:
    before, the keys after "/" were already queued to the table, and "r" opened the results screen. A
    "/" typed in the filter itself is text (w/o)."""
    async def scenario():
        async with browsing(three_runs, (120, 40)) as (app, pilot):
            for key, char in [("slash", "/"), ("r", "r"), ("slash", "/"), ("x", "x")]:  # as a terminal sends them
                app._driver.send_message(events.Key(key, char))
            await wait_for(pilot, lambda: app.browser.query_one("#search").value == "r/x", what="'r/x' in the filter")
            assert app.screen is app.browser and app.focused is app.browser.query_one("#search")

    run_app(scenario)


def test_the_filter_never_waits_for_the_store_thread(three_runs):
    """Typing filters the runs already listed on the UI thread: with the store thread held up (an ingest
    of ten thousand run dirs takes a tenth of a second, a locked database seconds), rows still follow
    each key. The status choice is a new read, done once the thread is free."""
    async def scenario():
        async with browsing(three_runs, (120, 40)) as (app, pilot):
            busy, free = threading.Event(), threading.Event()
            app.browser._worker.submit(lambda store: (busy.set(), free.wait(10)))
            await wait_for(pilot, busy.is_set, what="the store thread to be held up")
            search = app.browser.query_one("#search")
            search.value = "hpeft"
            await wait_for(pilot, lambda: names(app) == ["beta"], 1.0, "the filter, without the store thread")
            search.value = "ALPHA"  # any case
            await wait_for(pilot, lambda: names(app) == ["alpha"], 1.0, "the next filter")
            search.value = ""
            app.browser.query_one("#status").value = "running"
            await pilot.pause(0.3)
            assert app.browser.table.row_count == 3  # the status waits for the store's read
            free.set()
            await wait_for(pilot, lambda: app.browser.table.row_count == 0, what="no running runs")

    run_app(scenario)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_keys_typed_after_tab_go_to_the_filter(three_runs, size):
    """From the table, Tab reaches the filter; letters that are the browser's keys there (n new run, a
    archive, c compare, e export, t tags) are typed into it, and filter."""
    async def scenario():
        async with browsing(three_runs, size) as (app, pilot):
            await pilot.press("tab")
            assert app.focused is app.browser.query_one("#search")
            await pilot.press(*"beta")
            await wait_for(pilot, lambda: names(app) == ["beta"], what="the filter to keep beta")
            await pilot.press(*["backspace"] * 4, *"n", "a", "c", "e", "t")
            await wait_for(pilot, lambda: app.browser.table.row_count == 0, what="no run matches 'nacet'")
            assert app.screen is app.browser and app.browser.query_one("#search").value == "nacet"
            assert not any(run.get("archived") for run in Store.open(three_runs).runs(include_archived=True))

    run_app(scenario)


def test_sort_by_key_and_by_header(three_runs):
    async def scenario():
        async with browsing(three_runs, (120, 40)) as (app, pilot):
            table = app.browser.table
            avg = {n: last_of(events_of(three_runs / "runs" / f"r-{n}"), "run_finished")["avg"]
                   for n in ("alpha", "beta", "gamma")}
            assert len(set(avg.values())) == 3, f"the session's runs need distinct Avg to test sorting: {avg}"
            while table.sort_key != "avg":
                await pilot.press("o")
            by_avg = sorted(avg, key=lambda n: -avg[n])
            assert names(app) == by_avg  # best Avg first
            await pilot.press("O")
            assert names(app) == by_avg[::-1]
            await pilot.click("#runs", offset=(4, 0))  # the name header: alphabetical
            assert table.sort_key == "name" and names(app) == ["alpha", "beta", "gamma"]

    run_app(scenario)


def test_tags_notes_and_archive(three_runs):
    async def scenario():
        async with browsing(three_runs, (120, 40)) as (app, pilot):
            await pilot.press("t")  # on gamma, the first row
            await pilot.press(*"baseline, cifar 100", "enter", *"first try", "ctrl+s")  # commas split, as the field says
            store = Store.open(three_runs)
            await wait_for(pilot, lambda: store.run("r-gamma")["notes"] == "first try", what="notes saved")
            assert store.run("r-gamma")["tags"] == ["baseline", "cifar 100"]
            assert json.loads((three_runs / "runs" / "r-gamma" / "launch.json").read_text())["tags"] == ["baseline", "cifar 100"]
            await pilot.press("slash", *"baseline", "enter")  # tags are searchable
            await wait_for(pilot, lambda: names(app) == ["gamma"], what="search by tag")
            await pilot.press("escape", "slash", "ctrl+u", "enter")  # clear the filter again
            await wait_for(pilot, lambda: app.browser.table.row_count == 3, what="all rows")

            await pilot.press("a")  # archive gamma: hidden by default
            await wait_for(pilot, lambda: names(app) == ["beta", "alpha"], what="gamma hidden")
            await pilot.press("A")
            await wait_for(pilot, lambda: "gamma (archived)" in names(app), what="archived shown")

    run_app(scenario)


def test_export_ticked_runs_to_csv(three_runs, tmp_path):
    async def scenario():
        async with browsing(three_runs, (80, 24)) as (app, pilot):
            await pilot.press("space", "down", "space", "e")
            app.screen.query_one("#path").value = str(tmp_path / "out.csv")
            await pilot.press("enter")
            await wait_for(pilot, lambda: (tmp_path / "out.csv").exists(), what="the CSV file")
        with open(tmp_path / "out.csv") as f:
            table = list(csv.DictReader(f))
        assert {r["run_id"] for r in table} == {"r-gamma", "r-beta"}
        evals = {run_id: [e for e in events_of(three_runs / "runs" / run_id) if e["type"] == "eval"]
                 for run_id in ("r-gamma", "r-beta")}
        assert len(table) == sum(map(len, evals.values())) and table[0].keys() >= {"task", "acc", "forgetting"}
        assert [float(r["acc"]) for r in table if r["run_id"] == "r-beta"] == [e["acc"] for e in evals["r-beta"]]

    run_app(scenario)


def test_keyboard_only_at_80x24(three_runs):
    """Every screen is reachable and left by keys alone on a small terminal."""
    async def scenario():
        async with browsing(three_runs, (80, 24)) as (app, pilot):
            await pilot.press("down", "enter")
            assert isinstance(app.screen, LiveScreen) and app.screen.run_id == "r-beta"
            for key, tab in zip("2345", ("relevance", "affinity", "losses", "log")):
                await pilot.press(key)
                assert app.screen.query_one("#panels").active == tab
            await pilot.press("escape", "n")
            assert isinstance(app.screen, NewRunScreen)
            await pilot.press("escape")
            await pilot.press("ctrl+p", *"new run")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what="palette: new run")
            await pilot.press("escape", "ctrl+p", *"open run alpha")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.run_id == "r-alpha",
                           what="palette: open run")

    run_app(scenario)


def test_a_failing_store_is_reported_and_retried(three_runs, monkeypatch):
    real_runs, calls = Store.runs, []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_runs(self, *args, **kwargs)

    monkeypatch.setattr(Store, "runs", flaky)

    async def scenario():
        app = SecaApp(three_runs)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: any("database is locked" in n.message for n in app._notifications),
                           what="the error notice")
            app.browser.query_one("#search").value = " "  # any filter change polls again at once
            await wait_for(pilot, lambda: app.browser.table.row_count == 3, what="the retry")

    run_app(scenario)


def test_two_thousand_runs_scroll_with_the_cursor(home, engine_runs):
    """All 2,000 runs are the table's rows, of which only the lines on screen are drawn: the cursor, sort,
    filter and ticks reach every run, and the lines drawn follow the cursor wherever it goes."""
    n = 2000
    for i in range(n):
        make_run(home, f"run-{i:04d}", engine_runs["alpha"], name=f"run-{i:04d}", created=1000.0 + i)
    ingest(home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.browser.table
            await wait_for(pilot, lambda: len(table.runs) == n, 20, "every run listed")
            summary = lambda: str(app.browser.query_one("#runs-summary").render())  # noqa: E731
            drawn = lambda: [m.group() for line in table.render_lines(table.size.region)  # noqa: E731
                             if (m := re.search(r"run-\d{4}", line.text))]
            assert table.current_run_id == "run-1999" and "run 1 of 2,000" in summary()
            assert drawn()[:2] == ["run-1999", "run-1998"]
            for _ in range(8):  # eight pages down
                await pilot.press("pagedown")
            await pilot.pause()
            index = 8 * table.page
            assert table.cursor_index == index and table.current_run_id == f"run-{n - 1 - index:04d}"
            assert f"run {index + 1:,} of 2,000" in summary()
            assert table.current_run_id in drawn()  # scrolled to it
            await pilot.press("end")
            await pilot.pause()
            assert table.current_run_id == "run-0000" and table.cursor_index == n - 1
            assert drawn()[-1] == "run-0000" and "run 2,000 of 2,000" in summary()
            await pilot.press("space", "up", "space")  # ticks at the far end
            assert table.ticked == {"run-0000", "run-0001"}
            await pilot.press("O")  # oldest first: the cursor stays on its run, now near the start
            assert table.current_run_id == "run-0001" and table.cursor_index == 1
            assert [r["run_id"] for r in table.runs] == [f"run-{i:04d}" for i in range(n)]
            await pilot.pause()
            assert drawn()[:2] == ["run-0000", "run-0001"]
            await pilot.press("slash", *"run-1", "enter")  # run-1000 … run-1999
            await wait_for(pilot, lambda: len(table.runs) == 1000, what="the filter on the whole list")
            await pilot.press("end")
            assert table.current_run_id == "run-1999"
            await pilot.press("home")
            assert table.current_run_id == "run-1000"
            assert table.ticked == {"run-0000", "run-0001"}  # kept through the filter

    run_app(scenario)


def test_a_run_that_finishes_shows_its_whole_status_at_80_columns(home, engine_runs):
    """The status column is as wide as the longest status from the first frame: a row drawn as "running"
    and redrawn as "finished" shows all of it, and the columns to its right stay where they were (a
    column sized for "running" once cut a frame of "finished" to "finishe")."""
    run_dir, pending = make_run(home, "r-live", engine_runs["alpha"], name="demo", stop_after=("eval", 0))
    proc = fake_engine(run_dir)

    def row_line(app: SecaApp) -> str:
        return app.browser.table.render_line(1).text  # line 0 is the header

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: " running " in row_line(app), what="the row drawn as running")
            method_at = row_line(app).index(" seca ")
            append_events(run_dir, pending)
            proc.kill()
            await wait_for(pilot, lambda: " finished " in row_line(app), 10, "the row drawn as finished")
            assert row_line(app).index(" seca ") == method_at, row_line(app)

    try:
        run_app(scenario)
    finally:
        proc.kill()


def test_delete_and_rename_from_the_browser(three_runs):
    from seca_tui.screens.confirm import ConfirmScreen
    from seca_tui.screens.rename import RenameScreen

    async def scenario():
        async with browsing(three_runs, (80, 24)) as (app, pilot):
            table = app.browser.table
            assert names(app)[0] == "gamma"
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, RenameScreen), what="the rename dialog")
            await pilot.press(*["backspace"] * 5, *"gamma-2", "enter")
            await wait_for(pilot, lambda: names(app)[0] == "gamma-2", what="the new name")
            assert Store.open(three_runs).run("r-gamma")["name"] == "gamma-2"
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, RenameScreen), what="the rename dialog")
            await pilot.press(*["backspace"] * 7, *"beta", "enter")  # taken: refused, nothing changes
            await pilot.pause(0.5)
            assert names(app)[0] == "gamma-2"

            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
            await pilot.press("n")  # no: nothing happens
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
            await pilot.press("y")
            await wait_for(pilot, lambda: table.row_count == 2, what="the row to go")
            assert names(app) == ["beta", "alpha"] and not (three_runs / "runs" / "r-gamma").exists()
            assert Store.open(three_runs).run("r-gamma") is None

    run_app(scenario)


@pytest.mark.parametrize("size, hidden", [((80, 24), ["device", "dataset", "created"]), ((120, 40), ["created"])],
                         ids=["80x24", "120x40"])
def test_the_columns_that_matter_fit_the_width(three_runs, size, hidden):
    """At 80 columns the name, status, method, tasks, Last, Avg and Forgetting are all on screen, whole;
    created, device and dataset make way first. At 120 the config keys that tell the runs apart (the
    seed, the method's switches) take the place of created."""
    async def scenario():
        async with browsing(three_runs, size) as (app, pilot):
            table = app.browser.table
            await wait_for(pilot, lambda: bool(table.differing), what="the config keys that differ")
            await pilot.pause()
            header = table.render_line(0).text
            assert len(header.rstrip()) <= size[0]
            for title in ("name", "status", "method", "tasks", "Last", "Avg", "Forg."):
                assert f" {title} " in f" {header} ", header
            for title in ("device", "dataset", "created"):
                assert (f" {title} " in header) == (title not in hidden), header
            final = last_of(events_of(three_runs / "runs" / "r-gamma"), "run_finished")
            line = table.render_line(1).text  # the newest run, gamma
            assert line.split()[:2] == ["gamma", "finished"], line  # (the tick cell is blank)
            for key in ("last", "avg", "forgetting"):
                assert f" {final[key]:.1f}" in line, line

    run_app(scenario)


def test_question_mark_lists_every_key_at_80x24(three_runs):
    """The footer at 80 columns has no room for every key: ? opens a panel that lists them all."""
    async def scenario():
        async with browsing(three_runs, (80, 24)) as (app, pilot):
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: bool(app.screen.query("HelpPanel")), what="the keys panel")
            await pilot.pause()
            console = Console(width=200, record=True, file=io.StringIO())
            for widget in app.screen.query_one("HelpPanel").query("*"):
                console.print(widget.render())
            shown = console.export_text()
            for description in ("Delete", "Rename", "Archive", "Compare", "Export", "Cancel", "Tick"):
                assert description in shown, shown
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: not app.screen.query("HelpPanel"), what="the panel to close")

    run_app(scenario)


def test_the_footer_says_how_to_quit(three_runs):
    async def scenario():
        async with browsing(three_runs, (80, 24)) as (app, pilot):
            await pilot.pause()
            assert "Quit" in [str(key.description) for key in app.screen.query("FooterKey")]
            await pilot.press("ctrl+q")
            await wait_for(pilot, lambda: not app.is_running, what="the app to quit")

    run_app(scenario)


def test_home_and_end_move_the_cursor(three_runs):
    async def scenario():
        async with browsing(three_runs, (80, 24)) as (app, pilot):
            table = app.browser.table
            await pilot.press("end")
            assert table.cursor_index == 2 and table.current_run_id == "r-alpha"
            await pilot.press("home")
            assert table.cursor_index == 0 and table.current_run_id == "r-gamma"

    run_app(scenario)


def test_config_columns_show_what_differs_and_the_filter_reads_config_values(three_runs):
    """The columns after the metrics are the config keys whose values differ among the runs shown; the
    key picker (k) chooses others; the filter field reads key=value, a key by its last part, numbers as
    numbers."""
    from textual.widgets import SelectionList

    from seca_tui.export import flatten
    from seca_tui.screens.config_keys import ConfigKeysScreen

    configs = {name: flatten(last_of(events_of(three_runs / "runs" / f"r-{name}"), "run_started")["config"], "")
               for name in ("alpha", "beta", "gamma")}
    differing = [k for k in configs["alpha"] if len({json.dumps(c.get(k)) for c in configs.values()}) > 1
                 and k not in ("name", "method")]
    assert "train.seed" in differing, differing

    def config_columns(app) -> list[str]:
        return [header for key, header in app.browser.table.headers.items() if key.startswith("config.")]

    def cell(app, name: str, column: str) -> str:
        table = app.browser.table
        row = table.get_row_at([r["run_id"] for r in table.runs].index(f"r-{name}"))
        return str(dict(zip(table.headers, row))[f"config.{column}"])

    async def scenario():
        async with browsing(three_runs, (120, 40)) as (app, pilot):
            # worked out after the first paint, from every run's config
            await wait_for(pilot, lambda: config_columns(app), what="the config columns")
            shown = config_columns(app)
            assert shown and "seed" in shown, shown  # train.seed alone ends in "seed" among the columns
            assert len(shown) <= len(differing)
            assert [cell(app, n, "train.seed") for n in ("alpha", "beta", "gamma")] == \
                [str(configs[n]["train.seed"]) for n in ("alpha", "beta", "gamma")]
            assert all(isinstance(c, Text) for i in range(3) for c in app.browser.table.get_row_at(i))  # never markup

            await pilot.press("slash", *"train.seed=2")
            await wait_for(pilot, lambda: names(app) == ["beta"], what="the config filter")
            await pilot.press("ctrl+u", *"lr=1e-3")  # train.lr is 0.001 in all three
            assert configs["alpha"]["train.lr"] == 0.001
            await wait_for(pilot, lambda: app.browser.table.row_count == 3, what="1e-3 read as 0.001")
            kd = configs["alpha"]["seca.kd"]
            await pilot.press("ctrl+u", *f"seca.kd={kd} alpha")  # a key=value and a search word
            await wait_for(pilot, lambda: names(app) == ["alpha"], what="key=value with a search word")
            await pilot.press("ctrl+u", *"seed=2")  # train.seed or scenario.seed
            await wait_for(pilot, lambda: app.browser.table.row_count == 0, what="an ambiguous key keeps nothing")
            summary = str(app.browser.query_one("#runs-summary").render())
            assert "scenario.seed, train.seed" in summary, summary
            await pilot.press("ctrl+u", "enter")
            await wait_for(pilot, lambda: app.browser.table.row_count == 3, what="the filter cleared")

            await pilot.press("k")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfigKeysScreen), what="the key picker")
            keys = app.screen.query_one(SelectionList)
            assert set(keys.selected) == set(differing)  # ticked: the keys wanted, shown while they fit
            keys.deselect_all()
            keys.select("train.lr")
            await pilot.press("enter")
            await wait_for(pilot, lambda: config_columns(app) == ["lr"], what="the picked column")
            assert cell(app, "gamma", "train.lr") == "0.001"
            await pilot.click("#runs", offset=(table_x(app, "config.train.lr"), 0))  # sorts like any column
            assert app.browser.table.sort_key == "config.train.lr"
            await pilot.press("k", "d")  # back to the keys that differ
            await wait_for(pilot, lambda: config_columns(app) == shown, what="the differing keys again")

    run_app(scenario)


def table_x(app, column_key: str) -> int:
    """The x of a column's header in the runs table."""
    table = app.browser.table
    x = 0
    for key, width in table.widths.items():
        if key == column_key:
            return x + 1
        x += width + PADDING
    raise KeyError(column_key)
