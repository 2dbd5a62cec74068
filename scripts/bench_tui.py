"""Benchmark the TUI and the run log at a lab's scale: start-to-first-paint, filter and sort, `runs
--json`, ingest of a 20-task run, and event → panel latency.

    .venv/bin/python scripts/bench_tui.py [--runs 10000] [--size 120x40]

Prints figures; asserts nothing. Goals (issues 5 and 12; W&B asks self-hosted users to stay under 10k
runs per project): with 10,000 runs, first paint < 1 s, filter/sort < 150 ms, `runs --json` < 1 s,
ingest of a 20-task run's events < 1 s; an event written to events.jsonl shown in its panel < 0.5 s. Most figures come from the app run headless (Textual's test
driver: SQLite on worker threads, layout and rendering included, terminal output not); the start is also
timed as a user sees it, the `seca-tui` command in a pseudo-terminal. POSIX only.
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import pty
import select
import statistics
import struct
import subprocess
import sys
import termios
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_tui_fixtures import append_events, fake_engine, make_engine_runs, make_run, split_after  # noqa: E402

LATENCY_RUNS = 10
SETTLE_S = 2.5  # the browser polls the store every 2 s: filter and sort are timed after a poll, not during one


def build_home(root: Path, n_runs: int) -> tuple[Path, list]:
    """``n_runs`` copies of a real tiny engine run, finished, plus a few cut after task 0 whose remaining
    events the benchmark appends as the engine wrote them."""
    from seca_tui.store import Store

    home = root / "home"
    t0 = time.perf_counter()
    source = make_engine_runs(root / "engine", {"source": ()})["source"]
    print(f"setup: one tiny engine run in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    for i in range(n_runs):
        make_run(home, f"run-{i:05d}", source, name=f"run {i}", created=1_700_000_000.0 + i)
    live = [make_run(home, f"live-{i:02d}", source, name=f"live {i}", stop_after=("eval", 0))
            for i in range(LATENCY_RUNS)]
    Store.open(home).ingest_all()
    print(f"setup: {n_runs} finished runs + {LATENCY_RUNS} running, written and ingested in "
          f"{time.perf_counter() - t0:.1f} s")
    return home, live


async def first_paint(home: Path, size: tuple[int, int], n_rows: int) -> dict[str, float]:
    """Milliseconds from the start to: the app imported, its first frame, the first frame with runs in
    the table, all runs listed (the table holds a window of them). Call in a fresh process: a warm import
    would flatter the figure."""
    t_start = time.perf_counter()
    from seca_tui.app import SecaApp  # the import is part of starting the TUI
    frames = {"import": time.perf_counter()}

    class TimedApp(SecaApp):
        def _display(self, screen, renderable) -> None:  # called with every composed frame
            if renderable is not None:
                frames.setdefault("first frame", time.perf_counter())
                table = self.browser.table if self.browser.is_mounted else None
                if table is not None and table.row_count:
                    frames.setdefault("first frame with runs", time.perf_counter())
                if table is not None and len(table.runs) >= n_rows:
                    frames.setdefault("all runs listed", time.perf_counter())
            super()._display(screen, renderable)

    app = TimedApp(home)
    async with app.run_test(size=size) as pilot:
        while "all runs listed" not in frames and time.perf_counter() - t_start < 30:
            await pilot.pause(0.01)
    return {k: 1000 * (t - t_start) for k, t in frames.items()}


def report_first_paint(home: Path, size: tuple[int, int], n_rows: int, repeats: int) -> None:
    """Each start in its own process; the median and the best of ``repeats``."""
    command = [sys.executable, __file__, "--paint", str(home), "--size", f"{size[0]}x{size[1]}",
               "--rows", str(n_rows)]
    samples = [json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
               for _ in range(repeats)]
    print(f"start → first paint with {n_rows} runs in the store ({repeats} starts, median / best):")
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        goal = "  (goal < 1000 ms)" if key == "first frame with runs" else ""
        print(f"  {key:<24} {statistics.median(values):5.0f} / {min(values):5.0f} ms{goal}")


def terminal_first_paint(home: Path, size: tuple[int, int], marker: bytes) -> float:
    """Seconds from starting the ``seca-tui`` command in a pseudo-terminal until ``marker`` (a run name)
    has been written to it: the whole start as a user sees it, CLI and terminal output included."""
    command = Path(sys.executable).with_name("seca-tui")
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the TUI on the pty
        os.environ.update(SECA_TUI_HOME=str(home), TERM="xterm-256color")
        os.execv(command, [str(command)])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    seen, shown = b"", None
    while shown is None and time.perf_counter() - t0 < 30:
        if select.select([fd], [], [], 0.01)[0]:
            seen += os.read(fd, 1 << 16)
            shown = time.perf_counter() - t0 if marker in seen else None
    os.write(fd, b"\x11")  # ctrl+q
    while select.select([fd], [], [], 2)[0]:  # drain until the app has restored the terminal and quit
        try:
            if not os.read(fd, 1 << 16):
                break
        except OSError:
            break
    os.waitpid(pid, 0)
    os.close(fd)
    return 1000 * shown if shown is not None else float("nan")


async def latency(home: Path, live_runs: list, size: tuple[int, int]) -> None:
    from seca_tui.app import SecaApp
    from seca_tui.screens.live import LiveScreen
    from seca_tui.widgets.heatmap import Heatmap
    from seca_tui.widgets.line_chart import LineChart

    heatmap_ms, chart_ms = [], []
    app = SecaApp(home)
    async with app.run_test(size=size) as pilot:
        for run_dir, pending in live_runs:
            app.open_run(run_dir.name)
            while not (isinstance(app.screen, LiveScreen) and app.screen.updates):
                await pilot.pause(0.01)
            screen = app.screen
            matrix, losses = screen.query_one("#matrix", Heatmap), screen.query_one("#loss-chart", LineChart)
            await pilot.press("4")  # show the losses tab so its chart renders
            await pilot.pause(0.6)
            steps, rest = split_after(pending, "step", 1)
            draws = losses.draws
            t0 = time.perf_counter()
            append_events(run_dir, steps[-1:])  # one step event → loss chart
            while losses.draws == draws:
                await pilot.pause(0.005)
            chart_ms.append(1000 * (time.perf_counter() - t0))
            evaluated, _ = split_after(steps[:-1] + rest, "eval", 1)
            t0 = time.perf_counter()
            append_events(run_dir, evaluated)  # task 1 to its eval → accuracy matrix
            while len(matrix.cells) < 2:
                await pilot.pause(0.005)
            heatmap_ms.append(1000 * (time.perf_counter() - t0))
            app.pop_screen()
    for what, values in (("eval → accuracy matrix", heatmap_ms), ("step → loss chart (2 Hz throttle)", chart_ms)):
        print(f"event written → {what}: median {statistics.median(values):.0f} ms, "
              f"max {max(values):.0f} ms over {len(values)} (goal < 500 ms)")


async def filter_and_sort(home: Path, size: tuple[int, int], n_rows: int, repeats: int) -> None:
    """Milliseconds from a filter typed (or a sort key pressed) to the first frame that shows the result,
    each taken once the browser's store thread has finished a poll (SETTLE_S). The key goes in as a
    terminal sends it: Pilot's press() also waits until the whole process idles, store thread included,
    which is not what a user waits for."""
    from textual import events

    from seca_tui.app import SecaApp

    frames = [0]

    class TimedApp(SecaApp):
        def _display(self, screen, renderable) -> None:  # called with every composed frame
            if renderable is not None:
                frames[0] += 1
            super()._display(screen, renderable)

    async def drawn(condition) -> None:
        """Until ``condition()`` holds and a frame has been composed after it."""
        while not condition():
            await asyncio.sleep(0.001)
        seen = frames[0]
        while frames[0] == seen:
            await asyncio.sleep(0.001)

    app = TimedApp(home)
    filtered, sorted_ = [], []
    async with app.run_test(size=size) as pilot:
        table = app.browser.table
        while len(table.runs) < n_rows:
            await pilot.pause(0.01)
        for i in range(repeats):
            search = app.browser.query_one("#search")
            await asyncio.sleep(SETTLE_S)
            wanted = f"run {i + 1}"  # a tenth or so of the runs: run 1, run 10…19, run 100…199, …
            t0 = time.perf_counter()
            search.value = wanted
            await drawn(lambda: table.runs and all(wanted in (r.get("name") or "") for r in table.runs[:5]))
            filtered.append(1000 * (time.perf_counter() - t0))
            search.value = ""
            while len(table.runs) < n_rows:
                await pilot.pause(0.01)
            await asyncio.sleep(SETTLE_S)
            key = table.sort_key
            t0 = time.perf_counter()
            app._driver.send_message(events.Key("o", "o"))  # the next sort key
            await drawn(lambda: table.sort_key != key)
            sorted_.append(1000 * (time.perf_counter() - t0))
    for what, values in (("filter typed → rows shown", filtered), ("sort key → rows re-sorted", sorted_)):
        print(f"{what} with {n_rows} runs: median {statistics.median(values):.0f} ms, "
              f"max {max(values):.0f} ms (goal < 150 ms)")


def report_runs_json(home: Path, repeats: int) -> None:
    """`seca-tui runs --json` as a user runs it: a fresh process, the store already up to date."""
    command = [str(Path(sys.executable).with_name("seca-tui")), "runs", "--json"]
    env = dict(os.environ, SECA_TUI_HOME=str(home))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    print(f"`seca-tui runs --json`: median {statistics.median(times) * 1000:.0f} ms, "
          f"best {min(times) * 1000:.0f} ms (goal < 1 s)")


def report_ingest(root: Path, repeats: int, n_tasks: int = 20) -> None:
    """Ingest of a whole 20-task run's events.jsonl (written by hand: 20 evals, relevance, steps)."""
    from seca_tui.store import Store
    from tests.runlog import run_events, write_run

    matrix = [[50.0 + i for i in range(t + 1)] for t in range(n_tasks)]
    events = run_events(matrix, [100] * n_tasks)
    times = []
    for k in range(repeats):
        store = Store.open(root / f"ingest-{k}")
        run_dir = write_run(store.runs_dir, "r20", events)
        t0 = time.perf_counter()
        store.ingest(run_dir)
        times.append(time.perf_counter() - t0)
    print(f"ingest of a {n_tasks}-task run ({len(events)} events): median {statistics.median(times) * 1000:.0f} ms, "
          f"best {min(times) * 1000:.0f} ms (goal < 1 s)")


def report_export(home: Path, repeats: int) -> None:
    """`seca-tui export --all` of every run in the store, as the CLI does it (in process, to a file)."""
    from seca_tui.export import all_runs, write_csv
    from seca_tui.store import Store

    store = Store.open(home)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with open(home / "all.csv", "w", newline="") as out:
            rows = write_csv(out, *all_runs(store))
        times.append(time.perf_counter() - t0)
    print(f"export --all of {rows} runs: median {statistics.median(times) * 1000:.0f} ms, "
          f"best {min(times) * 1000:.0f} ms (goal < 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--size", default="120x40", help="terminal size, COLSxROWS")
    parser.add_argument("--repeats", type=int, default=5, help="starts to time")
    parser.add_argument("--paint", type=Path, help=argparse.SUPPRESS)  # one timed start, in a child
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if args.paint:
        print(json.dumps(asyncio.run(first_paint(args.paint, size, args.rows))))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        home, live = build_home(Path(tmp), args.runs)
        engines = [fake_engine(run_dir) for run_dir, _ in live]  # the runs count as running, not lost
        try:
            report_first_paint(home, size, args.runs + LATENCY_RUNS, args.repeats)
            starts = [terminal_first_paint(home, size, b"live 9") for _ in range(args.repeats)]
            print(f"  `seca-tui` in a terminal   {statistics.median(starts):5.0f} / {min(starts):5.0f} ms "
                  f"until the newest run is on screen (CLI start and terminal output included)")
            asyncio.run(filter_and_sort(home, size, args.runs + LATENCY_RUNS, args.repeats))
            report_runs_json(home, args.repeats)
            report_ingest(Path(tmp), args.repeats)
            asyncio.run(latency(home, live, size))
            report_export(home, args.repeats)
        finally:
            for proc in engines:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
