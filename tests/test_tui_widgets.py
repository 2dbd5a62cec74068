"""The TUI's pure parts: heatmap blocks and colours, bars, the chart's point budget, the live model."""
from __future__ import annotations

from seca_tui.screens.live import forgetting_per_task
from seca_tui.screens.live_model import LiveModel
from seca_tui.widgets.bar_list import bar
from seca_tui.widgets.heatmap import colour, downsample, fit_limit
from seca_tui.widgets.line_chart import thin


def test_downsample_averages_blocks_and_names_their_ranges():
    values = [[float(r * 10 + c) for c in range(10)] for r in range(10)]
    rows, cols, grid = downsample([f"r{i}" for i in range(10)], [f"c{i}" for i in range(10)], values, limit=4)
    assert rows == ["0–2", "3–5", "6–8", "9"] and cols[-1] == "9"  # indices, not one name among ranges
    assert grid[0][0] == sum(r * 10 + c for r in range(3) for c in range(3)) / 9
    assert grid[3][3] == 99.0


def test_downsample_keeps_small_ragged_matrices():
    rows, cols, grid = downsample(["a", "b"], ["x", "y"], [[1.0], [2.0, None]], limit=40)
    assert (rows, cols, grid) == (["a", "b"], ["x", "y"], [[1.0, None], [2.0, None]])


def test_fit_limit_keeps_what_fits_and_blocks_the_rest():
    names = [f"class {i}" for i in range(30)]
    assert fit_limit(names, names, cell=5, width=8 + 30 * 5, height=30) == 30  # every class, with its name
    assert fit_limit(names, names, cell=5, width=8 + 30 * 5, height=29) == 29  # one line short
    # too wide: block labels are index ranges ("28–29", 6 columns with the space), cells share the rest
    limit = fit_limit(names, names, cell=5, width=80, height=30)
    assert limit == (80 - 6) // 5
    rows, cols, grid = downsample(names, names, [[1.0] * 30 for _ in range(30)], limit)
    assert len(cols) <= limit and 6 + 5 * len(cols) <= 80 and rows[0] == "0–2"


def test_colour_map_ends_and_clamps():
    assert colour(0.0) == (68, 1, 84) and colour(1.0) == (253, 231, 37)
    assert colour(-3) == colour(0.0) and colour(7) == colour(1.0)


def test_bar_resolution_is_an_eighth_of_a_cell():
    assert bar(0.5, 4) == "██  "
    assert bar(1 / 32, 4) == "▏   "
    assert bar(2.0, 3) == "███"


def test_thin_keeps_the_budget_and_the_mean():
    xs = list(range(1000))
    px, py = thin(xs, [2.0] * 1000, 100)
    assert len(px) == 100 and set(py) == {2.0} and px[0] == 4.5
    assert thin([1, 2], [3, 4], 10) == ([1, 2], [3, 4])


def test_forgetting_per_task_uses_the_newest_row():
    matrix = [[90.0, None, None], [85.0, 89.0, None], [None, None, None]]
    assert forgetting_per_task(matrix) == [("T1", 5.0)]
    assert forgetting_per_task([[None]]) == []


def test_live_model_progress_eta_and_losses():
    """Hand-made events: timestamps and a loss that starts late are chosen to pin the ETA and padding rules."""
    model = LiveModel()
    model.apply([
        {"seq": 0, "ts": 0.0, "type": "run_started", "config": {"train": {"epochs": 2}}, "tasks": [[0], [1], [2]]},
        {"seq": 1, "ts": 10.0, "type": "task_started", "task": 0},
        {"seq": 2, "ts": 20.0, "type": "step", "task": 0, "epoch": 0, "step": 1, "steps_total": 4,
         "losses": {"ce": 1.0}, "ips": 50.0},
    ])
    assert (model.status, model.n_tasks, model.epochs, model.task) == ("running", 3, 2, 0)
    assert model.eta() is None  # one step event: its time includes the task's set-up, not yet a pace
    model.apply([{"seq": 2, "type": "step"}])  # already seen: ignored
    model.apply([{"seq": 3, "ts": 30.0, "type": "step", "task": 0, "epoch": 1, "step": 3, "steps_total": 4,
                  "losses": {"ce": 0.5, "kd": 0.2}}])
    assert model.eta() == 20.0 * (0.25 + 2)  # half of task 0 in the 10 s between its step events
    assert model.loss_series() == {"ce": ([0.25, 0.75], [1.0, 0.5]), "kd": ([0.75], [0.2])}
    model.apply([{"seq": 4, "type": "task_finished", "task": 0, "seconds": 60.0},
                 {"seq": 5, "type": "run_stopped", "after_task": 0}])
    assert model.status == "stopped" and model.eta() is None
    assert model.take_changes() >= {"header", "losses"} and model.take_changes() == set()


def test_live_model_phase_lasts_until_the_engine_trains_evaluates_or_ends():
    model = LiveModel()
    phase = {"type": "phase", "phase": "model", "message": "loading model seca-tiny"}
    model.apply([{"seq": 0, **phase}, {"seq": 1, "type": "run_started", "tasks": [[0]]}])
    assert model.phase == "loading model seca-tiny" and "header" in model.take_changes()  # run_started keeps it
    for seq, ends in enumerate(({"type": "step", "task": 0}, {"type": "eval", "after_task": 0, "task_acc": [1.0]},
                                {"type": "task_finished", "task": 0}, {"type": "run_failed", "error": "x"}), 2):
        model.apply([{"seq": 2 * seq, **phase}, {"seq": 2 * seq + 1, **ends}])
        assert model.phase is None, ends["type"]


def test_heatmap_refits_to_the_room_it_is_given():
    """A 100-class matrix (the demo's affinity after its last task) in 60×20 cells, then whole again."""
    from textual.app import App

    from seca_tui.widgets.heatmap import EXTRA_LINES, Heatmap
    from tests.test_tui_fixtures import run_app

    names = [f"class {i}" for i in range(100)]
    values = [[1.0 if r == c else 0.01 for c in range(100)] for r in range(100)]

    class Box(App):
        def compose(self):
            yield Heatmap(fmt="{:.2f}", id="map")

    async def scenario():
        app = Box()
        async with app.run_test(size=(80, 30)):
            heatmap = app.query_one(Heatmap)
            heatmap.fit_hint = "f shows every class"
            heatmap.set_data(names, names, values)
            assert len(heatmap.col_labels) == 34  # the widget's own limit, 40: blocks of 3
            heatmap.refit((60, 20))
            shown = len(heatmap.col_labels)
            assert len(heatmap.row_labels) == shown <= 20 - EXTRA_LINES
            assert max(map(len, heatmap.row_labels)) + 1 + 5 * shown <= 60
            assert heatmap.block_note == f"100×100 averaged into {shown}×{shown} blocks to fit · f shows every class"
            assert heatmap.cells[0][0] > heatmap.cells[0][1]  # the diagonal stands out in every block size
            heatmap.refit(None)
            assert len(heatmap.col_labels) == 34 and "to fit" not in heatmap.block_note

    run_app(scenario)


def test_the_cli_progress_line_says_what_the_engine_does_until_it_trains():
    from seca_tui import progress

    state = progress.Progress(n_tasks=3, epochs=2)
    state.update({"type": "phase", "v": 1, "phase": "model", "message": "loading model seca-tiny"})
    assert "loading model seca-tiny…" in state.line(None)
    state.update({"type": "task_started", "v": 1, "task": 0, "classes": [0, 1]})
    assert "loading model" in state.line(None)  # still what the engine last said it does
    state.update({"type": "step", "v": 1, "task": 0, "epoch": 0, "step": 1, "steps_total": 4, "ips": 50.0})
    line = state.line(None)
    assert "…" not in line and "epoch 1/2" in line and "step 1/4" in line
