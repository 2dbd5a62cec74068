"""`seca-tui` in a real terminal (tmux), driven by keys alone, at 120×40 and at 80×24.

Each size: open the new run form, keep the preselected `demo` preset, type overrides that shrink it to
seconds (3 tasks × 10 classes, a few images, one epoch), launch, read the accuracy matrix and the SG-AKT
relevance panel off the screen and compare them with the run's events.jsonl, SIGKILL the TUI (as a
dying terminal would), check the engine carries on to run_finished, reopen `seca-tui` and find the
finished run with its numbers as displayed. At 80×24 the five tabs of the live screen are also walked
by their number keys. Each size uses a private tmux server (`tmux -L`) and a fresh SECA_TUI_HOME; the
rendered shapes-r images are shared between the sizes.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seca_tui.process import is_alive

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")]

SECA_TUI = Path(sys.executable).with_name("seca-tui")
# seconds of training on a CPU (a GPU would end the run before the screen can be read and the TUI killed)
OVERRIDES = ["data.train_per_class=12", "data.test_per_class=4", "train.epochs=4", "scenario.classes=30",
             "scenario.n_tasks=3", "train.device=cpu"]
FIELDS_BEFORE_OVERRIDES = 11  # preset, name, dataset, tasks, increment, method, device, GPUs, queue, Slurm, Slurm opts
MATRIX_ROW = re.compile(r"\bT(\d+)((?: +(?:\d+\.\d|·))+)")


class Terminal:
    """One tmux server of our own, holding one window that runs ``seca-tui``."""

    def __init__(self, name: str, size: tuple[int, int], env: dict[str, str]) -> None:
        self.name, self.size, self.env = name, size, env

    def tmux(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.name, "-f", "/dev/null", *args], capture_output=True, text=True,
                              timeout=30)
        if done.returncode:
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def open(self) -> int:
        """Start `seca-tui` in a new detached session; returns its pid (the pane's process: exec'd). Its
        environment is ``env`` alone: an inherited COLUMNS or LINES (pytest's) would override the
        terminal's size."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        width, height = self.size
        self.tmux("new-session", "-d", "-s", "tui", "-x", str(width), "-y", str(height),
                  f"exec env -i {env} {SECA_TUI}")
        return int(self.tmux("display-message", "-p", "-t", "tui", "#{pane_pid}").strip())

    def screen(self, styled: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if styled else []), "-t", "tui")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "tui", *(["-l"] if literal else []), *keys)

    def press(self, *keys: str) -> None:
        """Each key once its predecessor shows (the screen, colours included, changed, then held still
        for a moment): Textual drops focus moves that arrive in one burst, as keys sent at once by tmux
        do. A change alone is not enough: an input's blinking cursor changes the screen too, and text
        sent after such a blink once landed in the field before the one the last Tab went to."""
        for key in keys:
            before = self.screen(styled=True)
            self.keys(key)
            self.wait(lambda _: self.screen(styled=True) != before, 10, f"the effect of {key}")
            self.settle()

    def settle(self, still: float = 0.3, timeout: float = 10) -> None:
        """Until two captures ``still`` seconds apart are the same (the cursor blinks every half second)."""
        deadline = time.monotonic() + timeout
        last = self.screen(styled=True)
        while time.monotonic() < deadline:
            time.sleep(still)
            now = self.screen(styled=True)
            if now == last:
                return
            last = now

    def wait(self, condition, timeout: float, what: str) -> str:
        """Capture the screen until ``condition(screen)`` holds; fails with the last screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if condition(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)

    def wait_text(self, text: str, timeout: float = 30) -> str:
        return self.wait(lambda screen: text in screen, timeout, repr(text))

    def kill_server(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True, timeout=30)


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def matrix_rows(screen: str) -> dict[int, list[str]]:
    """The accuracy matrix as the screen shows it, by 0-based task as in events: ``{t: ["77.5", "·", ...]}``
    (the screen labels the rows T1…T for people)."""
    rows = {}
    for line in screen.splitlines():
        for t, cells in MATRIX_ROW.findall(line):
            rows[int(t) - 1] = cells.split()
    return rows


def relevance_shown(screen: str, rows: list[str]) -> dict[str, list[str]]:
    """The relevance heatmap's cells by row name (class names may hold one space)."""
    out = {}
    for line in screen.splitlines():
        for name in rows:
            match = re.search(rf"│ {re.escape(name)} +((?:\d\.\d\d ?)+)", line)
            if match:
                out[name] = match.group(1).split()
    return out


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shapes-data")


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_seca_tui_in_a_terminal(size, tmp_path, shared_data):
    home = tmp_path / "home"
    env = {"SECA_TUI_HOME": str(home), "SECA_TUI_DATA": str(shared_data), "HF_HUB_OFFLINE": "1",
           "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    env.update({k: os.environ[k] for k in ("HOME", "PATH", "TMPDIR", "CUDA_VISIBLE_DEVICES") if k in os.environ})
    term = Terminal(f"seca-test-{os.getpid()}-{size[0]}x{size[1]}", size, env)
    engine_pid = None
    try:
        tui_pid = term.open()
        term.wait_text("0 runs")  # the browser, empty
        term.keys("n")
        form = term.wait_text("Overrides")
        assert re.search(r"Preset +demo\b", form), form  # demo comes preselected
        term.press(*["Tab"] * FIELDS_BEFORE_OVERRIDES)
        for line in OVERRIDES:
            term.keys(line, literal=True)
            term.wait_text(line, timeout=10)
            term.press("Enter")
        term.keys("C-s")  # launch

        term.wait_text("accuracy matrix", timeout=60)
        (run_dir,) = (home / "runs").iterdir()
        launch = json.loads((run_dir / "launch.json").read_text())
        engine_pid = launch["pid"]
        assert engine_pid != tui_pid and is_alive(engine_pid, None)
        assert launch["overrides"] == OVERRIDES

        # The live screen fills in as the engine writes: read the matrix, then the relevance panel
        screen = term.wait(lambda s: len(matrix_rows(s)) >= 1, 120, "a row of the accuracy matrix")
        evals = {e["after_task"]: e for e in events(run_dir) if e["type"] == "eval"}
        shown = matrix_rows(screen)
        for t, cells in shown.items():
            assert cells[: t + 1] == [f"{a:.1f}" for a in evals[t]["task_acc"]], screen
            assert set(cells[t + 1:]) <= {"·"}
        term.keys("2")

        def relevance_drawn(s: str):
            """The panel with every row of the relevance event it names (a capture can catch it mid-draw)."""
            title = re.search(r"SG-AKT relevance · task (\d+)", s)
            shown = [e for e in events(run_dir) if title and e["type"] == "relevance" and e["task"] + 1 == int(title.group(1))]
            cells = relevance_shown(s, shown[0]["rows"]) if shown else {}
            complete = len(cells) == len(shown[0]["rows"]) and all(len(v) == len(shown[0]["cols"]) for v in cells.values()) if shown else False
            return s if complete else None

        screen = term.wait(relevance_drawn, 120, "the relevance panel with all its rows")
        task = int(re.search(r"SG-AKT relevance · task (\d+)", screen).group(1))
        relevance = next(e for e in events(run_dir) if e["type"] == "relevance" and e["task"] + 1 == task)
        cols = [f"T{int(c.split()[-1]) + 1}" for c in relevance["cols"]]  # people count tasks from 1
        assert re.search(r"│ +" + " +".join(cols) + r" *│?", screen), screen
        values = relevance_shown(screen, relevance["rows"])
        assert values == {row: [f"{v:.2f}" for v in vs] for row, vs in zip(relevance["rows"], relevance["values"])}

        # The terminal dies (the TUI killed, then its tmux server and pane): the engine goes on
        killed_at = time.time()
        os.kill(tui_pid, signal.SIGKILL)
        term.kill_server()
        deadline = time.monotonic() + 180
        while is_alive(tui_pid, None) or events(run_dir)[-1]["type"] != "run_finished":
            assert time.monotonic() < deadline, "the engine did not finish after the TUI died"
            time.sleep(0.2)
        final = events(run_dir)[-1]
        after = [e["type"] for e in events(run_dir) if e["ts"] > killed_at]
        assert "task_finished" in after, f"the run was nearly done before the TUI was killed: {after}"

        # Reopened, the TUI shows the finished run with its numbers
        tui_pid = term.open()
        screen = term.wait(lambda s: re.search(r"demo +finished\b", s), 30, "the finished run in the browser")
        line = next(line for line in screen.splitlines() if re.search(r"demo +finished\b", line))
        assert re.search(rf"\b3 +{final['last']:.1f} +{final['avg']:.1f} +{final['forgetting']:.1f}\b", line), line
        term.keys("Enter")
        screen = term.wait(lambda s: "finished" in s and len(matrix_rows(s)) == 3, 30, "the finished run's matrix")
        evals = [e for e in events(run_dir) if e["type"] == "eval"]
        assert matrix_rows(screen) == {t: [f"{a:.1f}" for a in e["task_acc"]] + ["·"] * (2 - t)
                                       for t, e in enumerate(evals)}
        assert f"Last {final['last']:.1f}" in screen and f"Avg {final['avg']:.1f}" in screen
        if size == (80, 24):  # every tab of the live screen by its number key
            for key, text in (("2", "SG-AKT relevance"), ("3", "SE-VPR affinity"), ("4", "losses"),
                              ("1", "accuracy matrix")):
                term.keys(key)
                term.wait_text(text, timeout=10)
            log_line = (run_dir / "engine.log").read_text().splitlines()[-1]
            term.keys("5")
            term.wait_text(log_line[: size[0] - 2], timeout=10)
    finally:
        term.kill_server()
        if engine_pid and is_alive(engine_pid, None):
            os.kill(engine_pid, signal.SIGKILL)
