"""An ablation is shown by its own name (engine.config.VARIANTS) wherever a run's method is shown:
the store's records, `runs`, `runs --json`, `show`, `compare`, and the runs browser."""
from __future__ import annotations

import json


from engine.config import VARIANTS
from seca_tui import launcher
from seca_tui.app import SecaApp
from seca_tui.store import Store
from tests.commands import ok
from tests.test_tui_fixtures import run_app, wait_for

CUSTOM = ["method=seca", "seca.kd=mean"]  # not one of VARIANTS: the method, marked as changed


def make_runs(home) -> dict[str, str]:
    """One created run per variant (and a custom one) of the tiny preset: run id → expected name."""
    store = Store.open(home)
    runs = {}
    for i, (key, (_, overrides)) in enumerate([*VARIANTS.items(), ("seca*", ("", CUSTOM))]):
        runs[launcher.create_run("tiny", overrides, name=f"v{i}", store=store).run_id] = key
    return runs


def test_every_view_names_the_variant(home):
    runs = make_runs(home)
    assert {r["run_id"]: r["variant"] for r in Store.open(home).runs()} == runs
    listed = ok("runs").splitlines()
    for run_id, name in runs.items():
        line = next(line for line in listed if line.startswith(run_id))
        assert f"  {name}  " in line, line
        assert f"method    {name}\n" in ok("show", run_id)
    assert {r["run_id"]: r["variant"] for r in json.loads(ok("runs", "--json"))} == runs
    ablated = [r for r, name in runs.items() if name in ("seca", "seca w/o SG-AKT")]
    method_row = next(line for line in ok("compare", *ablated).splitlines() if line.startswith("method"))
    assert "seca w/o SG-AKT" in method_row and method_row.split()[1] == runs[ablated[0]].split()[0]

    async def scenario():
        tui = SecaApp(home)
        async with tui.run_test(size=(120, 40)) as pilot:
            table = tui.browser.table
            await wait_for(pilot, lambda: table.row_count == len(runs), what="the rows")
            shown = {table.runs[i]["run_id"]: str(table.get_row_at(i)[4])
                     for i in range(table.row_count)}
            assert shown == runs

    run_app(scenario)
