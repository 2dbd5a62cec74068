"""The results screen at 80×24 (Pilot): groups with mean ± std, a group-by change, sorting, a group
opened; and the key that saves the figure in view on the results, live and compare screens."""
from __future__ import annotations

import numpy as np
import pytest

from seca_tui import results
from seca_tui.app import SecaApp
from seca_tui.screens.compare import CompareScreen
from seca_tui.screens.live import LiveScreen
from seca_tui.screens.results import GroupScreen, ResultsScreen
from seca_tui.widgets.line_chart import LineChart
from tests.runlog import CONFIG, run_events, write_run
from tests.test_tui_fixtures import ingest, run_app, wait_for

SECA = {"kd": "sgakt", "classifier": "sevpr_hybrid", "replay": "off"}
NO_KD = {**SECA, "kd": "none"}
# SECA leads on Last, SECA w/o SG-AKT on Avg: the two sort orders differ.
RUNS = {
    "seca-t0": (SECA, 0, [[60.0], [50.0, 70.0]], True),
    "seca-t1": (SECA, 1, [[62.0], [52.0, 72.0]], True),
    "nokd-t0": (NO_KD, 0, [[90.0], [20.0, 60.0]], True),
    "nokd-t1": (NO_KD, 1, [[92.0], [24.0, 60.0]], True),
    "nokd-t2": (NO_KD, 2, [[91.0]], False),  # still running: counted apart
}


@pytest.fixture
def grouped(home):
    for i, (name, (seca, trial, matrix, finish)) in enumerate(RUNS.items()):
        config = {**CONFIG, "name": name, "seca": seca, "scenario": {"n_tasks": 2, "trial": trial}}
        write_run(home / "runs", f"2026120{i}-100000-{name}", run_events(matrix, [10, 10], config=config, finish=finish))
    ingest(home)
    return home


def rows(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def expected(metric: str, names: list[str]) -> str:
    values = []
    for n in names:
        matrix = RUNS[n][2]
        accs = [sum(row) / len(row) for row in matrix]
        values.append({"last": accs[-1], "avg": sum(accs) / len(accs)}[metric])
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"


def test_results_screen_groups_sorts_regroups_and_opens_a_group(grouped):
    async def scenario():
        app = SecaApp(grouped)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.browser.table.row_count == 5, what="five runs")
            await pilot.press("r")  # nothing ticked: the filtered runs, all five
            await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.groups, what="groups")
            screen = app.screen
            table = screen.query_one("#groups")
            head = [str(c.label) for c in table.columns.values()]
            assert head[:3] == ["method", "seca.kd", "n"] and head[-1] == "unfinished"
            got = rows(table)
            assert [r[0] for r in got] == ["SECA", "SECA w/o SG-AKT"]  # sorted by Last, highest first
            assert [r[2] for r in got] == ["2", "2"] and [r[-1] for r in got] == ["0", "1"]
            assert got[0][3] == expected("last", ["seca-t0", "seca-t1"])
            assert got[1][4] == expected("avg", ["nokd-t0", "nokd-t1"])

            chart = screen.query_one("#results-chart", LineChart)
            assert list(chart.series) == ["SECA, kd=sgakt (n=2)", "SECA w/o SG-AKT, kd=none (n=2)"]
            assert chart.series["SECA w/o SG-AKT, kd=none (n=2)"] == ([1, 2], [91.0, 41.0])
            assert chart.whiskers["SECA w/o SG-AKT, kd=none (n=2)"] == ([90.0, 40.0], [92.0, 42.0])  # min–max

            await pilot.press("o")  # sort by Avg
            await wait_for(pilot, lambda: rows(table)[0][0] == "SECA w/o SG-AKT", what="sorted by Avg")
            assert "Avg ↓" in str(screen.query_one("#results-sort").render())
            await pilot.press("O")
            await wait_for(pilot, lambda: rows(table)[0][0] == "SECA", what="Avg, lowest first")

            await pilot.press("g")
            await pilot.press(*"scenario.trial", "enter")
            await wait_for(pilot, lambda: len(rows(table)) == 3, what="one row per trial")
            by_trial = {r[1]: r for r in rows(table)}
            assert [by_trial[t][2] for t in ("0", "1", "2")] == ["2", "2", "0"]
            assert by_trial["2"][-1] == "1" and by_trial["2"][3] == "-"  # the unfinished run: no mean
            assert by_trial["0"][0] == "SECA / SECA w/o SG-AKT"

            table.focus()
            trial0 = [r[1] for r in rows(table)].index("0")
            table.move_cursor(row=trial0)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, GroupScreen), what="the group's runs")
            runs = {r[0].split("100000-")[1]: r for r in rows(app.screen.query_one("#group-runs"))}  # name: the id
            assert sorted(runs) == ["nokd-t0", "seca-t0"]
            assert {n: r[3] for n, r in runs.items()} == {"seca-t0": "60.0", "nokd-t0": "40.0"}
            await pilot.press("escape")
            assert isinstance(app.screen, ResultsScreen)

            await pilot.press("p")  # the curves as a PDF under <home>/figures/
            await wait_for(pilot, lambda: list((grouped / "figures").glob("*-curves-*.pdf")), timeout=60,
                           what="the saved figure")
            (pdf,) = (grouped / "figures").glob("*.pdf")
            assert pdf.read_bytes().startswith(b"%PDF-")
            await wait_for(pilot, lambda: any(str(pdf) in n.message for n in app._notifications), what="its path")
    run_app(scenario)


def test_ticked_runs_only_and_the_save_keys_of_live_and_compare(grouped):
    async def scenario():
        app = SecaApp(grouped)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.browser.table.row_count == 5, what="five runs")
            await pilot.press("space", "down", "space", "r")
            await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen) and app.screen.groups, what="groups")
            assert sum(g.n + len(g.unfinished) for g in app.screen.groups) == 2
            await pilot.press("escape", "c")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.runs, what="compare")
            await pilot.press("p")
            await wait_for(pilot, lambda: list((grouped / "figures").glob("2-runs-curves-*.pdf")), timeout=60,
                           what="the compare figure")
            await pilot.press("escape", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen), what="the live screen")
            await pilot.press("2", "p")  # the relevance tab's figure
            await wait_for(pilot, lambda: list((grouped / "figures").glob("*-relevance-*.pdf")), timeout=60,
                           what="the relevance figure")
            await pilot.press("5", "p")  # the engine log: no figure, a warning
            await wait_for(pilot, lambda: any("no figure" in n.message for n in app._notifications), what="a warning")
    run_app(scenario)


def test_group_label_and_band():
    b = results.band([[1.0, 2.0, 3.0], [3.0, 4.0]])
    assert (b.mean, b.low, b.high, b.n) == ([2.0, 3.0, 3.0], [1.0, 2.0, 3.0], [3.0, 4.0, 3.0], [2, 2, 1])
    assert b.std[:2] == pytest.approx([np.std([1, 3], ddof=1), np.std([2, 4], ddof=1)]) and b.std[2] is None
