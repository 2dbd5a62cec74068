"""The compare screen: overlaid A_t curves, metrics, and a config table of differences only (Pilot)."""
from __future__ import annotations

from seca_tui.app import SecaApp
from seca_tui.screens.compare import CompareScreen, config_diff
from seca_tui.widgets.line_chart import LineChart
from tests.test_tui_fixtures import events_of, ingest, last_of, make_run, run_app, wait_for


def cells(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_config_diff_keeps_differences_only():
    a = {"method": "seca", "train": {"epochs": 2, "lr": 0.001}, "seca": {"kd": "sgakt"}}
    b = {"method": "seca", "train": {"epochs": 5, "lr": 0.001}}
    assert config_diff([a, b]) == [("seca.kd", ["sgakt", "—"]), ("train.epochs", ["2", "5"])]
    assert config_diff([a, a]) == []


def test_compare_ticked_runs(home):
    make_run(home, "r-a", name="alpha", created=1.0)
    make_run(home, "r-b", name="beta", created=2.0, offset=-10.0, overrides=("train.lr=0.01",))
    make_run(home, "r-c", name="gamma", created=3.0)
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
                events = events_of(home / "runs" / f"r-{name[0]}")
                assert chart.series[name] == ([0, 1, 2], [e["acc"] for e in events if e["type"] == "eval"])
                final = last_of(events, "run_finished")
                assert row[5:9] == [f"{final[k]:.1f}" for k in ("last", "avg", "forgetting", "bwt")]
            await pilot.press("2")
            diff = cells(screen.query_one("#config-diff"))
            assert diff == [["name", "alpha", "beta"], ["train.lr", "0.001", "0.01"]]
            await pilot.press("escape")
            assert app.screen is app.browser

    run_app(scenario)
