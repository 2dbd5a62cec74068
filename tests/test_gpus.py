"""The GPU panel (runs browser, live screen's tab 6) and ``seca-tui gpus``: per-GPU utilisation and memory
over time, and which run holds each GPU.

These tests read a FAKE NVML (tests/fake_nvml.py) through seca_tui/gpus.py's real NvmlSampler, because no
NVIDIA GPU exists on the machine they run on; the real nvidia-ml-py on real GPUs is checked on a GPU
machine. Everything else is real: the store (SQLite), the runs' processes (their pids and command lines are
what NVML would list), the Textual app under its Pilot."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from seca_tui import gpus
from seca_tui.app import SecaApp
from seca_tui.process import HOST
from seca_tui.screens.live import LiveScreen
from seca_tui.screens.runs import RunsScreen
from seca_tui.store import Store
from tests import fake_nvml
from tests.commands import ok
from tests.fake_nvml import GIB, FakeGpu
from tests.runlog import run_events, write_run
from tests.test_tui_fixtures import fake_engine, run_app, wait_for

HOSTILE = "[b]alpha"  # a run name that markup would swallow


@pytest.fixture
def machine(home, monkeypatch):
    """Two GPUs and three runs. alpha runs data-parallel: NVML lists its rank (a child whose command line
    names the run dir) on GPU 0, though the store recorded device 1 for it; beta's process NVML cannot see
    (pid namespaces), so the device the store recorded (1) places it; gamma has finished."""
    procs = []

    def run(run_id: str, name: str, device: str, finish: bool = False):
        run_dir = write_run(home / "runs", run_id, run_events([[50.0]], [4], finish=finish))
        (run_dir / "launch.json").write_text(json.dumps({"run_id": run_id, "name": name, "host": HOST}))
        if not finish:
            procs.append(fake_engine(run_dir))
        return run_dir.resolve()

    alpha, _, _ = run("r-alpha", HOSTILE, "1"), run("r-beta", "beta", "1"), run("r-gamma", "gamma", "0", finish=True)
    rank = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--run-dir", str(alpha)])
    procs.append(rank)
    store = Store.open(home)
    store.ingest_all()
    for run_id, device in (("r-alpha", "1"), ("r-beta", "1"), ("r-gamma", "0")):
        store.update_run(run_id, device=device)
    store.close()
    cards = [FakeGpu(util=90, used=40 * GIB, pids=[rank.pid, 1]),
             FakeGpu(name="NVIDIA A100-SXM4-80GB", util=None, used=int(7.5 * GIB), total=80 * GIB, pids=[4_000_000])]
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml.module(cards))
    yield cards
    for proc in procs:
        proc.kill()
        proc.wait()


def test_each_gpu_names_the_runs_on_it_by_process_else_by_recorded_device(machine, home):
    store = Store.open(home)
    monitor = gpus.GpuMonitor()
    monitor.sample(store)
    assert monitor.unavailable is None
    first, second = monitor.rows
    assert gpus.cells(first.gpu, first.runs) == ["0", "H200", "90%", "40.0/140.0 GiB", HOSTILE]
    assert gpus.cells(second.gpu, second.runs) == ["1", "A100-SXM4-80GB", "-", "7.5/80.0 GiB", "beta"]


def test_history_keeps_the_last_samples_oldest_first(machine, home, monkeypatch):
    monkeypatch.setattr(gpus, "SAMPLE_S", 0.0)
    monkeypatch.setattr(gpus, "HISTORY", 3)
    store, monitor = Store.open(home), gpus.GpuMonitor()
    for util in (10, 20, 30, 40):
        machine[0].util = util
        monitor.sample(store)
    assert monitor.rows[0].util == (20, 30, 40)
    assert monitor.rows[0].mem == (40 / 140,) * 3 and monitor.rows[1].util == (None,) * 3


def lines(app: SecaApp, selector: str) -> list[str]:
    return str(app.screen.query_one(selector).content).splitlines()


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_the_browser_and_the_live_screen_show_the_gpus_over_time(machine, home, monkeypatch, size):
    monkeypatch.setattr(gpus, "SAMPLE_S", 0.05)
    monkeypatch.setattr(RunsScreen, "POLL_SECONDS", 0.1)
    machine[0].util = 0

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: HOSTILE in "".join(lines(app, "#runs-gpus")), what="the GPU panel")
            machine[0].util = 100
            await wait_for(pilot, lambda: "100%" in lines(app, "#runs-gpus")[0], what="a later sample")
            first, second = lines(app, "#runs-gpus")
            assert "H200" in first and "40.0/140.0 GiB" in first and first.rstrip().endswith(HOSTILE)
            assert first.startswith(" ")  # the browser shows no run of its own
            assert "▁" in first and "█" in first  # idle, then busy: the sparkline keeps both
            assert first.index("▁") < first.index("█")  # oldest on the left
            assert "A100" in second and "7.5/80.0 GiB" in second and second.rstrip().endswith("beta")
            assert "gamma" not in first + second  # finished: it holds nothing
            assert len(first) <= app.browser.query_one("#runs-gpus").content_size.width  # whole, names too

            app.open_run("r-alpha")
            await wait_for(pilot, lambda: isinstance(app.screen, LiveScreen), what="the live screen")
            await pilot.press("6")
            assert app.screen.query_one("#panels").active == "gpus"
            await wait_for(pilot, lambda: len(lines(app, "#gpu-panel")) == 2, what="the live GPU panel")
            first, second = lines(app, "#gpu-panel")
            assert first.startswith("▸") and first.rstrip().endswith(HOSTILE)  # the run's own GPU
            assert second.startswith(" ") and second.rstrip().endswith("beta")

    run_app(scenario)


@pytest.mark.parametrize("nvml, reason", [
    (None, "nvidia-ml-py is not installed"),
    (fake_nvml.module([], init_error="NVML Shared Library Not Found"), "NVML Shared Library Not Found"),
    (fake_nvml.module([]), "the driver lists no GPU"),
])
def test_without_nvml_the_panel_and_the_command_say_why_in_one_line(home, monkeypatch, nvml, reason):
    monkeypatch.setitem(sys.modules, "pynvml", nvml)  # None: `import pynvml` raises ImportError
    monkeypatch.setattr(RunsScreen, "POLL_SECONDS", 0.1)
    line = f"no NVIDIA GPU: NVML not available ({reason})"

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: lines(app, "#runs-gpus") == [line], what="the reason")
            app.browser.action_new_run()  # the app goes on
            await wait_for(pilot, lambda: getattr(app.focused, "id", None) == "preset", what="the new run screen")

    run_app(scenario)
    assert ok("gpus") == line + "\n"
    assert json.loads(ok("gpus", "--json")) == {"gpus": [], "unavailable": reason}


def test_a_binding_that_breaks_mid_run_is_reported_and_sampling_stops(machine, home, monkeypatch):
    """An NVML error while sampling (a GPU fell off the bus) or an unexpected one from the binding ends
    the panel with the reason, never the browser's store poll that samples."""
    monkeypatch.setattr(gpus, "SAMPLE_S", 0.0)
    store, nvml = Store.open(home), sys.modules["pynvml"]
    memory = nvml.nvmlDeviceGetMemoryInfo
    for error, reason in ((nvml.NVMLError("GPU is lost"), "GPU is lost"),
                          (OSError("bad handle"), "OSError: bad handle")):
        monkeypatch.setattr(nvml, "nvmlDeviceGetMemoryInfo", memory)
        monitor = gpus.GpuMonitor()
        monitor.sample(store)
        assert len(monitor.rows) == 2

        def broken(handle, error=error):
            raise error

        monkeypatch.setattr(nvml, "nvmlDeviceGetMemoryInfo", broken)
        monitor.sample(store)
        assert (monitor.unavailable, monitor.rows) == (reason, [])
        monitor.sample(store)  # not asked again
        assert monitor.unavailable == reason


def test_gpus_command_prints_the_panel_as_a_table_and_as_json(machine):
    table = ok("gpus").splitlines()
    assert table[0].split() == gpus.HEADERS
    assert table[1].split() == ["0", "H200", "90%", "40.0/140.0", "GiB", HOSTILE]
    assert table[2].split() == ["1", "A100-SXM4-80GB", "-", "7.5/80.0", "GiB", "beta"]
    found = json.loads(ok("gpus", "--json"))
    assert found["unavailable"] is None
    assert [(g["index"], g["util"], g["mem_used"], g["mem_total"], g["runs"]) for g in found["gpus"]] == [
        (0, 90, 40 * GIB, 140 * GIB, [{"run_id": "r-alpha", "name": HOSTILE}]),
        (1, None, int(7.5 * GIB), 80 * GIB, [{"run_id": "r-beta", "name": "beta"}]),
    ]
