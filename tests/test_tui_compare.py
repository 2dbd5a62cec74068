"""The compare screen: overlaid A_t curves, metrics, and a config table of differences only (Pilot)."""
from __future__ import annotations

import json

from seca_tui.app import SecaApp
from seca_tui.screens.compare import CompareScreen, config_diff
from seca_tui.widgets.line_chart import LineChart
from tests.test_tui_fixtures import TINY_RUNS, events_of, ingest, last_of, make_run, run_app, wait_for
from tests.test_tui_fixtures import engine_runs  # noqa: F401 - the session fixture, found by pytest here


def cells(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_config_diff_keeps_differences_only():
    a = {"method": "seca", "train": {"epochs": 2, "lr": 0.001}, "seca": {"kd": "sgakt"}}
    b = {"method": "seca", "train": {"epochs": 5, "lr": 0.001}}
    assert config_diff([a, b]) == [("seca.kd", ["sgakt", "—"]), ("train.epochs", ["2", "5"])]
    assert config_diff([a, a]) == []


def leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    """A nested config as ``{"a.b": value}``."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_compare_ticked_runs(home, engine_runs):
    for i, name in enumerate(("alpha", "beta", "gamma")):
        make_run(home, f"r-{name}", engine_runs[name], name=name, created=1.0 + i)
    ingest(home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.browser.table.row_count == 3, what="three rows")
            await pilot.press("c")  # nothing ticked: a hint, no screen
            assert not isinstance(app.screen, CompareScreen)
            await pilot.press("down", "space", "down", "space", "c")  # beta and alpha
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.runs,
                           what="the compared runs")
            screen = app.screen
            chart = screen.query_one("#compare-chart", LineChart)
            metrics = cells(screen.query_one("#metrics"))
            assert [row[0] for row in metrics] == ["alpha", "beta"]
            for name, row in zip(("alpha", "beta"), metrics):
                events = events_of(home / "runs" / f"r-{name}")
                assert chart.series[name] == ([1, 2, 3], [e["acc"] for e in events if e["type"] == "eval"])
                final = last_of(events, "run_finished")
                assert row[5:9] == [f"{final[k]:.1f}" for k in ("last", "avg", "forgetting", "bwt")]
            await pilot.press("2")
            diff = cells(screen.query_one("#config-diff"))
            # the resolved configs the engine ran with differ in the overridden keys, and where a method implies others
            a, b = (leaves(last_of(events_of(home / "runs" / f"r-{n}"), "run_started")["config"]) for n in ("alpha", "beta"))
            keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            assert {o.split("=")[0] for o in TINY_RUNS["alpha"] + TINY_RUNS["beta"]} <= set(keys)
            assert diff == [[key, str(a.get(key, "—")), str(b.get(key, "—"))] for key in keys]
            await pilot.press("escape")
            assert app.screen is app.browser

    run_app(scenario)


def test_a_long_config_value_wraps_in_a_column_that_fits(home, engine_runs):
    """At 80 columns a long data.root is read whole, wrapped over lines, and the table fits the screen."""
    root = "/data/" + "/".join(["a-rather-long-folder-name"] * 5) + "/shapes-r"
    for i, name in enumerate(("alpha", "beta")):
        run_dir, _ = make_run(home, f"r-{name}", engine_runs[name], name=name, created=1.0 + i)
        if name == "beta":  # as if it had run on a dataset under a deep folder
            events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
            next(e for e in events if e["type"] == "run_started")["config"]["data"]["root"] = root
            (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    ingest(home)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.browser.table.row_count == 2, what="two rows")
            await pilot.press("space", "down", "space", "c", "2")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.runs,
                           what="the compared runs")
            diff = app.screen.query_one("#config-diff")
            await wait_for(pilot, lambda: "data.root" in diff.rows, what="the data.root row")
            await pilot.pause()
            row = diff.get_row("data.root")
            assert str(row[2]) == root  # whole, not cut
            assert diff.rows["data.root"].height > 1  # wrapped over several lines
            assert diff.virtual_size.width <= 80

    run_app(scenario)
