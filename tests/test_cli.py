"""The seca-tui command: every command's --help, JSON shapes, one-sentence errors, the detach
contract, Ctrl-C while following, a fast torch-free start, and (slow) the real engine end to end."""
from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import signal
import sys
import time
from pathlib import Path

import pytest

from seca_tui import launcher, progress
from seca_tui.process import is_alive
from seca_tui.store import RUN_COLUMNS, Store
from tests.commands import cli, seca_process
from tests.engine_runs import engine_env, events, fixture_preset, log_tails, wait_for
from tests.runlog import CONFIG, fake_engine, run_events, write_run

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ["run", "attach", "stop", "cancel", "queue", "resume", "runs", "show", "compare", "export", "presets", "data",
            "data check", "rm", "rename", "tag", "gpus"]


def one_sentence_error(result, *fragments: str) -> None:
    """Exit code ≠ 0, one line on stderr naming ``fragments``, no traceback."""
    assert result.exit_code != 0, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture
def hand_runs(home) -> Store:
    """Two finished runs written by hand: 'a' (seca) and 'b' (hpeft, lr 0.01)."""
    store = Store.open(home)
    write_run(store.runs_dir, "20261128-100000-aaaa", run_events([[80.0], [60.0, 90.0]], [10, 10]))
    write_run(store.runs_dir, "20261128-110000-bbbb", run_events(
        [[70.0], [65.0, 75.0]], [10, 10], config={**CONFIG, "method": "hpeft", "train": {"epochs": 2, "lr": 0.01}}))
    return store


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """`run`/`resume` start a fake engine (seconds, no torch) through the launcher's real path."""
    monkeypatch.setattr(launcher, "engine_command", fake_engine(tmp_path, seconds=0.3))
    monkeypatch.setattr(progress, "POLL_S", 0.05)


# ----------------------------------------------------------------------------------------- start-up


def test_cli_import_and_help_load_no_torch():
    """What keeps every command quick to start (torch and open_clip take seconds to import) is that
    neither is imported before a command needs it: not by the import, not by --help."""
    help_ = ("import runpy, sys; sys.argv = ['seca-tui', '--help']\n"
             "try: runpy.run_module('seca_tui', run_name='__main__')\n"
             "except SystemExit as e: assert e.code in (0, None), e.code\n"
             "assert 'torch' not in sys.modules and 'open_clip' not in sys.modules, 'torch was imported'")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for check in ("import sys, seca_tui.cli; assert 'torch' not in sys.modules and 'open_clip' not in sys.modules",
                  help_):
        result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    assert "seca-tui" in result.stdout and "export" in result.stdout  # the help itself was printed


def test_bare_seca_tui_starts_the_tui_without_the_cli(tmp_path):
    """`seca-tui` alone starts the TUI without importing the CLI (Typer and every command: a fifth of a
    second of each start); `seca-tui --home H` goes through the CLI to the same TUI, on that home. The
    app's run() is replaced: no terminal here (tests/test_terminal.py starts the real one)."""
    start = ("import os, sys\n"
             "import seca_tui.app\n"
             "started = []\n"
             "seca_tui.app.SecaApp.run = lambda self: started.append(os.environ.get('SECA_TUI_HOME'))\n"
             "from seca_tui.entry import main\n"
             "sys.argv = ['seca-tui', *sys.argv[1:]]\n"
             "try:\n"
             "    main()\n"
             "except SystemExit as e:  # Typer's, once the command is done\n"
             "    assert e.code in (0, None), e.code\n"
             "print(started, 'seca_tui.cli' in sys.modules, 'typer' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "SECA_TUI_HOME"} | {"PYTHONPATH": str(REPO)}
    for args, printed in (([], "[None] False False"), (["--home", str(tmp_path)], f"[{str(tmp_path)!r}] True True")):
        result = subprocess.run([sys.executable, "-c", start, *args], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == printed


def test_cli_import_loads_no_numpy_and_numpy_still_imports_after():
    """sqlite-utils would import numpy (a tenth of a second) to map its types: `import seca_tui.cli` keeps
    it out; numpy imports as usual afterwards (plots, bench, torch), and sqlite-utils maps its types when
    numpy was loaded first."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    checks = ["import sys, seca_tui.cli\n"
              "assert 'numpy' not in sys.modules, 'numpy was imported'\n"
              "import numpy\n"
              "assert numpy.arange(3).sum() == 3",
              "import numpy, seca_tui.store, sqlite_utils.db\n"
              "assert sqlite_utils.db.np is numpy and numpy.float64 in sqlite_utils.db.COLUMN_TYPE_MAPPING"]
    for check in checks:
        result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, home):
    result = cli(*command.split(), "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout
    assert "<bool>" not in result.stdout  # a flag takes no value: nothing to show after it


def test_presets_lists_names_and_descriptions(home):
    result = cli("presets")
    assert result.exit_code == 0
    assert any(line.startswith("tiny") and "Smoke run" in line for line in result.stdout.splitlines())


# ----------------------------------------------------------------------------------------- mistakes


@pytest.mark.parametrize("args, fragments", [
    (["run", "tinny"], ["No preset named 'tinny'", "did you mean 'tiny'"]),
    (["run", "tiny", "--set", "train.epoch=3"], ["'train.epoch'", "did you mean 'train.epochs'"]),
    (["run", "tiny", "--set", "train.epochs=many"], ["train.epochs", "an integer"]),
    (["run", "tiny", "--gpus", "0,0"], ["--gpus"]),
    (["run", "missing.yaml"], ["missing.yaml", "does not exist"]),
    (["show", "nope"], ["No run matches 'nope'"]),
    (["attach", "nope"], ["No run matches 'nope'"]),
    (["stop", "nope"], ["No run matches 'nope'"]),
    (["resume", "nope"], ["No run matches 'nope'"]),
    (["compare", "nope", "other"], ["No run matches 'nope'"]),
    (["runs", "--status", "done"], ["--status must be one of"]),
])
def test_user_mistakes_are_one_sentence(home, args, fragments):
    one_sentence_error(cli(*args), *fragments)


def test_missing_dataset_prints_the_expected_layout(home):
    result = cli("data", "check", "folder", "--set", "data.root=/no/such/folder")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith("error: The image folder dataset was not found at /no/such/folder.")
    assert "train/<class>/" in result.stderr  # the layout it expects, after the sentence


def test_refusals_on_finished_runs(hand_runs):
    one_sentence_error(cli("stop", "20261128-10"), "is finished, so there is nothing to stop")
    one_sentence_error(cli("resume", "20261128-10"), "is finished; there is nothing left to run")
    one_sentence_error(cli("compare", "20261128-10", "20261128-100000-aaaa"), "at least two different runs")


# ----------------------------------------------------------------------------------------- reading


def test_runs_and_show_json_keys_match_the_all_columns(hand_runs):
    listed = json.loads(cli("runs", "--json").stdout)
    assert [r["run_id"] for r in listed] == ["20261128-110000-bbbb", "20261128-100000-aaaa"]
    for record in listed:
        assert list(record)[: len(RUN_COLUMNS)] == RUN_COLUMNS
        assert all(k.startswith("config.") for k in list(record)[len(RUN_COLUMNS):])
    csv_header = cli("export", "--all", "--csv", "-").stdout.splitlines()[0].split(",")
    assert set(csv_header) == {k for r in listed for k in r}

    shown = json.loads(cli("show", "20261128-10", "--json").stdout)  # a unique id prefix
    assert shown == {**listed[1], "matrix": [[80.0, None], [60.0, 90.0]]}
    assert json.loads(cli("runs", "--status", "running", "--json").stdout) == []


def test_people_tables(hand_runs):
    runs = cli("runs").stdout
    assert "20261128-100000-aaaa" in runs and "hpeft" in runs and "finished" in runs
    shown = cli("show", "20261128-10").stdout
    assert "Forgetting 20.00" in shown and "BWT -20.00" in shown and "accuracy matrix" in shown
    compared = cli("compare", "20261128-10", "20261128-11").stdout
    assert "A_2" in compared and "train.lr" in compared and "method" in compared
    data = json.loads(cli("compare", "20261128-10", "20261128-11", "--json").stdout)
    assert data["config_diff"] == {"config.method": ["seca", "hpeft"], "config.train.lr": [0.001, 0.01]}
    assert data["acc"]["20261128-100000-aaaa"] == [80.0, 75.0]


@pytest.mark.parametrize("columns", [80, 200])
def test_runs_fits_the_terminal(hand_runs, monkeypatch, columns):
    """80 columns keep the run id, name, status, method and the metrics; wider shows every column."""
    monkeypatch.setenv("COLUMNS", str(columns))
    hand_runs.ingest_all()
    hand_runs.update_run("20261128-100000-aaaa", name="a rather long name for a run, as people write them")
    lines = cli("runs").stdout.splitlines()
    assert max(map(len, lines)) <= columns
    assert lines[0].split()[:3] == ["run", "name", "status"] and "forgetting" in lines[0]
    assert ("created" in lines[0]) == (columns == 200) and ("dataset" in lines[0]) == (columns == 200)
    row = next(line for line in lines if line.startswith("20261128-100000-aaaa"))
    assert ("…" in row) == (columns == 80) and "finished" in row and "75.00" in row


@pytest.mark.parametrize("columns", [80, 250])
def test_compare_fits_the_terminal(hand_runs, monkeypatch, columns):
    """Three runs with a long config value: at 80 columns every line fits, long cells end in …; wide, whole."""
    monkeypatch.setenv("COLUMNS", str(columns))
    root = "/data/a/rather/long/path/to/the/datasets/of/this/lab/shapes-r"
    write_run(hand_runs.runs_dir, "20261128-120000-cccc", run_events(
        [[75.0], [55.0, 85.0]], [10, 10], config={**CONFIG, "data": {"name": "shapes-r", "root": root}}))
    lines = cli("compare", "aaaa", "bbbb", "cccc").stdout.splitlines()
    assert max(map(len, lines)) <= columns
    root_line = next(line for line in lines if line.startswith("data.root"))
    assert (root in root_line) == (columns == 250) and ("…" in root_line) == (columns == 80)
    assert next(line for line in lines if line.startswith("A_2")).split() == ["A_2", "75.00", "70.00", "70.00"]


def test_home_option_overrides_the_environment(hand_runs, tmp_path):
    other = tmp_path / "other-home"
    result = cli("--home", str(other), "runs", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    assert (other / "runs.db").exists()


def test_damaged_lines_are_warned_about_not_fatal(hand_runs):
    with open(hand_runs.runs_dir / "20261128-100000-aaaa" / "events.jsonl", "a") as f:
        f.write("not json\n")
    result = cli("runs")
    assert result.exit_code == 0 and "line(s) " in result.stderr and "were skipped" in result.stderr


@pytest.mark.parametrize("args", [["runs"], ["runs", "--json"]])
@pytest.mark.parametrize("output", ["pipe", "terminal"])
def test_a_closed_output_ends_the_command_with_one_sentence(hand_runs, home, output, args):
    """`seca-tui runs | head -0` (the reader has gone: EPIPE) or a terminal hung up under it (EIO):
    one sentence on stderr, exit 1, no traceback and no 'Exception ignored' from Python's exit flush."""
    if output == "pipe":
        read, write = os.pipe()
    else:  # a terminal whose far side (sshd, tmux) has closed; not this process's controlling one
        read, write = pty.openpty()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "seca_tui", *args], stdout=write, stderr=subprocess.PIPE,
                              env=engine_env(home), cwd=REPO, text=True, timeout=120, stdin=subprocess.DEVNULL)
    finally:
        os.close(write)
    assert done.returncode == 1
    assert done.stderr == "error: the output closed.\n"  # `runs` starts no run: nothing more to say


# ----------------------------------------------------------------------------------------- run & follow


def test_run_detach_prints_the_run_id_last(home, fake):
    result = cli("run", "tiny", "--name", "quick", "--gpus", "2", "--detach")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.splitlines()[-1]
    store = Store.open(home)
    assert store.resolve("quick") == run_id
    assert json.loads((store.runs_dir / run_id / "launch.json").read_text())["gpus"] == 2
    wait_for(lambda: store.ingest(store.runs_dir / run_id) is not None and store.run(run_id)["status"] == "finished")


def test_run_follows_to_the_end_and_prints_metrics(home, fake):
    result = cli("run", "tiny")
    assert result.exit_code == 0, result.output
    assert "after task 1/2: A_t 50.00%" in result.stdout
    assert "Last 50.00" in result.stdout and result.stdout.rstrip().endswith("finished.")


def test_ctrl_c_without_a_terminal_leaves_the_run_running(home, fake, monkeypatch):
    monkeypatch.setattr(launcher, "engine_command", fake_engine(home.parent, seconds=30))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(progress, "follow", interrupted)
    result = cli("run", "tiny")
    assert result.exit_code == 0 and "keeps running" in result.stdout
    store = Store.open(home)
    run_id = store.runs()[0]["run_id"]
    # Up and beating (a SIGTERM before the engine's handler is installed would simply kill it).
    wait_for(lambda: store.ingest(store.runs_dir / run_id) and store.run(run_id)["heartbeat_ts"])
    assert store.run(run_id)["status"] == "running"
    assert cli("stop", run_id).exit_code == 0
    wait_for(lambda: store.ingest(store.runs_dir / run_id) is not None and store.run(run_id)["status"] == "stopped")


CTRL_C_RUN = """
import sys
from pathlib import Path
from seca_tui import cli, launcher
from tests.runlog import fake_engine
launcher.engine_command = fake_engine(Path(sys.argv[1]), seconds=float(sys.argv[2]))
sys.argv = ["seca-tui", "run", "tiny"]
cli.main()
"""


def on_a_terminal(tmp_path: Path, seconds: float):
    """``seca-tui run tiny`` on a pseudo-terminal with the fake engine running ``seconds``: ``(pid, fd,
    read_until)``, where ``read_until(text)`` reads the terminal until ``text`` and returns all read."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: seca-tui on a terminal, with the fake engine
        os.execve(sys.executable, [sys.executable, "-c", CTRL_C_RUN, str(tmp_path), str(seconds)],
                  dict(os.environ, PYTHONPATH=str(REPO)))
    seen = b""

    def read_until(text: bytes, timeout: float = 60) -> bytes:
        nonlocal seen
        deadline = time.time() + timeout
        while text not in seen and time.time() < deadline:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    seen += os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
        assert text in seen, seen.decode(errors="replace")
        return seen
    return pid, fd, read_until


def test_ctrl_c_asks_with_one_key_and_answers_from_the_runs_state_now(home, tmp_path):
    """The run finishes while the question waits: leaving it is no longer "keeps running"."""
    pid, fd, read_until = on_a_terminal(tmp_path, seconds=4)
    read_until(b"task 1/2")
    os.write(fd, b"\x03")
    read_until(b"leave it running (l)? ")
    wait_for(lambda: any(e["type"] == "run_finished" for run_dir in (home / "runs").iterdir()
                         for e in map(json.loads, (run_dir / "events.jsonl").read_text().splitlines())), timeout=60)
    os.write(fd, b"l")  # one key, no Enter
    seen = read_until(b"finished.")
    assert os.waitpid(pid, 0)[1] == 0
    assert b"ended meanwhile (finished); nothing to stop" in seen and b"keeps running" not in seen
    os.close(fd)


def test_ctrl_c_on_a_terminal_asks_then_stops_the_run(home, tmp_path):
    pid, fd, read_until = on_a_terminal(tmp_path, seconds=60)
    read_until(b"task 1/2")  # the fake engine's own plan: it is up and handles SIGTERM
    os.write(fd, b"\x03")  # Ctrl-C: SIGINT to the terminal's foreground group, not the engine's session
    read_until(b"leave it running (l)? ")
    os.write(fd, b"s")  # one key, no Enter
    seen = read_until(b"stopped.")
    assert os.waitpid(pid, 0)[1] == 0
    assert b"Stopping after the current step" in seen and b"stopped after task 0" in seen
    os.close(fd)


def test_attach_to_a_finished_run_prints_its_story(hand_runs):
    result = cli("attach", "20261128-10")
    assert result.exit_code == 0
    assert "after task 2/2: A_t 75.00%" in result.stdout and "Forgetting 20.00" in result.stdout


def test_stop_then_resume_through_the_cli(home, fake, monkeypatch):
    monkeypatch.setattr(launcher, "engine_command", fake_engine(home.parent, seconds=30))
    run_id = cli("run", "tiny", "--detach").stdout.splitlines()[-1]
    store = Store.open(home)
    wait_for(lambda: store.ingest(store.runs_dir / run_id) and store.run(run_id)["heartbeat_ts"])
    assert "Asked run" in cli("stop", run_id[:17]).stdout
    wait_for(lambda: store.ingest(store.runs_dir / run_id) is not None and store.run(run_id)["status"] == "stopped")
    monkeypatch.setattr(launcher, "engine_command", fake_engine(home.parent, seconds=0.2))
    result = cli("resume", run_id, "--detach")
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == run_id
    wait_for(lambda: store.ingest(store.runs_dir / run_id) is not None and store.run(run_id)["status"] == "finished")


# ----------------------------------------------------------------------------------------- the real engine


@pytest.mark.slow
def test_real_engine_run_show_and_export(home, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "seca_tui", "run", "tiny", "--name", "e2e"],
                          env=env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "after task 3/3" in done.stdout and "finished." in done.stdout
    shown = json.loads(subprocess.run([sys.executable, "-m", "seca_tui", "show", "e2e", "--json"], env=env,
                                      capture_output=True, text=True, check=True).stdout)
    final = [e for e in events(Path(home) / "runs" / shown["run_id"]) if e["type"] == "run_finished"][0]
    for key in ("last", "avg", "forgetting", "bwt"):
        assert shown[key] == pytest.approx(final[key])
    assert len(shown["matrix"]) == 3 and shown["config.model.name"] == "seca-tiny"
    csv_path = tmp_path / "steps.csv"
    subprocess.run([sys.executable, "-m", "seca_tui", "export", "e2e", "--csv", str(csv_path), "--table", "steps"],
                   env=env, check=True)
    assert "total" in csv_path.read_text().splitlines()[0]


def complete_events(run_dir: Path) -> list[dict]:
    """The complete lines of events.jsonl (the engine may be writing the last one)."""
    data = (run_dir / "events.jsonl").read_bytes() if (run_dir / "events.jsonl").exists() else b""
    return [json.loads(raw) for raw in data[: data.rfind(b"\n") + 1].splitlines()]


def ranks_of(agent: int) -> list[int]:
    """Live children of torchrun's agent: its ranks (each in a session of its own, which the agent
    signals when it is told to stop)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == agent and fields[0] not in ("Z", "X"):
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
def test_gpus_runs_data_parallel_under_torchrun_and_stops_as_one_group(home, tmp_path):
    """--gpus 2 with train.device=cpu: two gloo ranks under torchrun, detached like a single run;
    stop reaches every rank through the agent (they stop at the same step, rank 0 reports it) and
    resume runs two again."""
    preset = fixture_preset(tmp_path)
    env = engine_env(home) | {"OMP_NUM_THREADS": "1"}

    def seca(*args: str) -> str:
        return seca_process(env, *args, timeout=120).stdout

    run_id = seca("run", preset, "--set", "train.device=cpu", "--set", "train.epochs=30", "--gpus", "2",
                  "--detach").splitlines()[-1]
    run_dir = home / "runs" / run_id
    launch = json.loads((run_dir / "launch.json").read_text())
    assert launch["argv"][1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert launch["processes"] == 2 and launch["devices"] is None  # a count sets no CUDA_VISIBLE_DEVICES
    agent = launch["pid"]
    assert "torch.distributed.run" in Path(f"/proc/{agent}/cmdline").read_text()
    wait_for(lambda: any(e["type"] == "step" and e["task"] == 1 for e in complete_events(run_dir)), timeout=300)
    ranks = ranks_of(agent)
    assert len(ranks) == 2 and os.getpgid(agent) == agent  # the agent leads its group, as a single engine does
    assert (run_dir / "engine.rank1.log").exists()
    assert json.loads(seca("runs", "--json"))[0]["status"] == "running"

    assert "Asked run" in seca("stop", run_id)
    wait_for(lambda: not any(is_alive(pid, None) for pid in [agent, *ranks]), timeout=120)  # all gone
    evs = complete_events(run_dir)
    # after task 0 as a rule; a loaded machine may finish task 1 (a few seconds) before the stop lands
    assert evs[-1]["type"] == "run_stopped" and evs[-1]["after_task"] in (0, 1)
    assert sum(e["type"] == "run_stopped" for e in evs) == 1  # rank 0 alone reports it
    assert json.loads(seca("runs", "--json"))[0]["status"] == "stopped"

    rank1_before = (run_dir / "engine.rank1.log").stat().st_size
    seca("resume", run_id, "--detach")
    launch = json.loads((run_dir / "launch.json").read_text())
    assert launch["argv"][1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert launch["argv"][-1] == "--resume" and launch["pid"] != agent
    wait_for(lambda: complete_events(run_dir)[-1]["type"] in ("run_finished", "run_failed"), timeout=300)
    wait_for(lambda: not is_alive(launch["pid"], None, run_dir), timeout=60)
    shown = json.loads(seca("show", run_id, "--json"))
    assert shown["status"] == "finished" and len(shown["matrix"]) == 3 and None not in shown["matrix"][-1]
    assert (run_dir / "engine.rank1.log").stat().st_size > rank1_before  # rank 1 ran the resumed tasks too


def start_two_ranks(home: Path, tmp_path: Path, *overrides: str) -> tuple[Path, int, list[int]]:
    """A detached two-rank gloo run under torchrun, once it has trained a step: its dir, agent, ranks."""
    env = engine_env(home) | {"OMP_NUM_THREADS": "1"}
    sets = [a for o in ("train.device=cpu", "train.epochs=30", *overrides) for a in ("--set", o)]
    done = subprocess.run([sys.executable, "-m", "seca_tui", "run", fixture_preset(tmp_path), *sets, "--gpus", "2",
                           "--detach"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    run_dir = home / "runs" / done.stdout.splitlines()[-1]
    agent = json.loads((run_dir / "launch.json").read_text())["pid"]
    wait_for(lambda: any(e["type"] == "step" for e in complete_events(run_dir)), timeout=300,
             describe=lambda: log_tails(run_dir))
    ranks = ranks_of(agent)
    assert len(ranks) == 2
    return run_dir, agent, ranks


@pytest.mark.slow
def test_ranks_whose_torchrun_agent_is_killed_stop_at_one_step(home, tmp_path):
    """SIGKILL of torchrun's agent alone (the OOM killer's way): its orphaned ranks do not train on to
    the end; each notices its parent has gone, they stop at the same step, rank 0 writes run_stopped
    and says why, and the run is stopped, resumable."""
    run_dir, agent, ranks = start_two_ranks(home, tmp_path)
    os.kill(agent, signal.SIGKILL)
    wait_for(lambda: not any(is_alive(pid, None) for pid in ranks), timeout=120, describe=lambda: log_tails(run_dir))
    evs = complete_events(run_dir)
    assert evs[-1]["type"] == "run_stopped" and sum(e["type"] == "run_stopped" for e in evs) == 1, log_tails(run_dir)
    assert not any(e["type"] == "run_finished" for e in evs)
    assert f"The torchrun agent (pid {agent}) has gone" in (run_dir / "engine.log").read_text()
    assert "still running" not in (run_dir / "engine.log").read_text()  # it stopped on its own, in time
    store = Store.open(home)
    store.ingest(run_dir)
    assert store.run(run_dir.name)["status"] == "stopped"


@pytest.mark.slow
def test_a_rank_stuck_after_its_agent_died_is_ended_after_the_grace(home, tmp_path):
    """The agent is killed while rank 1 is frozen (SIGSTOP: a peer that never answers), so rank 0
    blocks in the step's all-reduce and cannot reach the stop. After train.orphan_grace_seconds it
    writes where each thread was and ends, instead of holding its device for gloo's 30-minute
    timeout; the run is lost with that reason, resumable."""
    grace = 4
    run_dir, agent, ranks = start_two_ranks(home, tmp_path, f"train.orphan_grace_seconds={grace}")
    rank0 = next(pid for pid in ranks if "RANK=0" in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0"))
    rank1 = next(pid for pid in ranks if pid != rank0)
    try:
        os.kill(rank1, signal.SIGSTOP)
        killed = time.time()
        os.kill(agent, signal.SIGKILL)
        wait_for(lambda: not is_alive(rank0, None), timeout=120, describe=lambda: log_tails(run_dir))
        took = time.time() - killed
    finally:
        os.kill(rank1, signal.SIGKILL)
    log = (run_dir / "engine.log").read_text()
    assert f"The torchrun agent (pid {agent}) has gone" in log
    assert took >= grace and "Where each thread of this rank was:" in log
    assert "all_reduce" in log or "backward" in log  # the stack it was stuck in
    assert not any(e["type"] in ("run_stopped", "run_finished") for e in complete_events(run_dir))
    store = Store.open(home)
    store.ingest(run_dir)
    store.mark_lost()
    run = store.run(run_dir.name)
    assert run["status"] == "lost" and f"{grace} s after the torchrun agent (pid {agent}) went" in run["error"]
