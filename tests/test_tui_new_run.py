"""The new run form: validation with the engine's config loader, ablations as overrides, launch (Pilot)."""
from __future__ import annotations

import shutil

import pytest
import yaml

from seca_tui import launcher
from seca_tui.app import SecaApp
from seca_tui.screens.live import LiveScreen
from seca_tui.screens.new_run import NewRunScreen, preset_choices
from seca_tui.widgets.heatmap import Heatmap
from tests.test_tui_fixtures import engine_runs  # noqa: F401 - the session fixture, found by pytest here
from tests.test_tui_fixtures import events_of, run_app, wait_for


async def open_form(pilot, app: SecaApp) -> NewRunScreen:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), what="the form")
    return app.screen


def verdict(screen: NewRunScreen) -> str:
    return str(screen.query_one("#verdict").content)


async def check(pilot, form: NewRunScreen, timeout: float = 5.0) -> str:
    """Press ctrl+t and wait for the verdict of the check (it runs on a worker)."""
    await pilot.press("ctrl+t")
    await wait_for(pilot, lambda: verdict(form)[:1] in "✓✗", timeout, what="the verdict")
    return verdict(form)


def test_demo_preset_comes_first():
    assert preset_choices()[0] == "demo"


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_keys_typed_after_tab_fill_the_field_it_reached(home, size):
    """Letters that are keys elsewhere (n new run, s stop, r resume, ? keys, q) go into the Input that Tab
    moved to, not to a binding; Tab again moves on to the next field."""
    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=size) as pilot:
            form = await open_form(pilot, app)
            await wait_for(pilot, lambda: app.focused is form.query_one("#preset"), what="the preset focused")
            await pilot.press("tab", *"nrs?q")
            assert app.focused is form.query_one("#name") and form.query_one("#name").value == "nrs?q"
            await pilot.press("tab", "tab", *"12")  # past the dataset Select to the number of tasks
            assert form.query_one("#n_tasks").value == "12"
            assert app.screen is form and not app.screen.query("HelpPanel")

    run_app(scenario)


def test_config_errors_show_inline(home):
    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            form = await open_form(pilot, app)
            form.query_one("#preset").value = "tiny"
            form.query_one("#overrides").focus()
            await pilot.press(*"trian.epochs=3")
            assert "Unknown config key 'trian.epochs'; did you mean 'train.epochs'?" in await check(pilot, form)
            assert form.query_one("#verdict").has_class("error")

            form.query_one("#overrides").text = "train.epochs=-1"
            assert "'train.epochs' has value -1, but it must be at least 0" in await check(pilot, form)

            form.query_one("#overrides").text = "data.name=folder\ndata.root=/nowhere"
            assert "/nowhere" in await check(pilot, form)  # the dataset check names the missing folder

            form.query_one("#overrides").text = ""
            form.query_one("#gpus").value = "0,x"
            await pilot.press("ctrl+s")  # launch refuses an invalid form
            assert "--gpus takes a count" in verdict(form) and isinstance(app.screen, NewRunScreen)

            form.query_one("#gpus").value = ""
            form.query_one("#n_tasks").value = "2"
            form.query_one("#method").value = "seca w/o SE-VPR"
            assert "seca on shapes-r, 2 tasks" in await check(pilot, form)
            assert not form.query_one("#verdict").has_class("error")
            assert form.overrides() == ["scenario.n_tasks=2", "method=seca", "seca.classifier=text"]

            form.query_one("#overrides").text = "model.pretrained=/no/such/weights.pt"  # weights checked first too
            # the engine's own weights check imports open_clip (and torch) the first time: seconds on a loaded machine
            assert "'/no/such/weights.pt' for model.pretrained does not exist." in await check(pilot, form, 120)

            form.query_one("#overrides").text = "train.lr=5E-4\nseca.fusion=.5"  # YAML 1.1 reads 5E-4 as text
            assert (await check(pilot, form)).startswith("✓")

    run_app(scenario)


def test_launch_opens_the_live_screen(home, engine_runs, monkeypatch):
    """The form creates the run dir through the launcher; the engine is a stand-in that writes the
    session's real tiny run (test_tui_live runs the real engine from a launch, test_terminal from keys)."""
    started = []

    def start(run_dir, resume=False, store=None, command=None):
        started.append(run_dir)
        shutil.copyfile(engine_runs["alpha"] / "events.jsonl", run_dir / "events.jsonl")
        return 0

    monkeypatch.setattr(launcher, "start", start)

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            form = await open_form(pilot, app)
            form.query_one("#preset").value = "tiny"
            form.query_one("#name").value = "my run"
            form.query_one("#method").value = "seca w/o SG-AKT"
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen), what="the live screen")
            live = app.screen
            assert started == [home.resolve() / "runs" / live.run_id]
            matrix = live.query_one("#matrix", Heatmap)
            evals = [e for e in events_of(started[0]) if e["type"] == "eval"]
            await wait_for(pilot, lambda: len(matrix.cells) == len(evals), what="the matrix")
            config = yaml.safe_load((started[0] / "config.yaml").read_text())
            assert config["name"] == "my run" and config["seca"]["kd"] == "none"
            await pilot.press("escape")  # back to the browser, not the form
            await wait_for(pilot, lambda: app.browser.table.row_count == 1, what="the new run in the table")

    run_app(scenario)
