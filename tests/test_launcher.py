"""The launcher with real processes: run dirs, detached children (own session, /dev/null stdin, output
to engine.log, alive after their parent and its pipe are gone), stop, resume, lost, and pid honesty."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import config
from engine.config import ConfigError
from seca_tui import launcher
from seca_tui.launcher import create_run, parse_gpus
from seca_tui.process import is_alive
from seca_tui.store import Store
from tests.engine_runs import wait_for
from tests.runlog import fake_engine

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent('''
    """Writes what a detached child should see, then keeps printing to stdout once told to."""
    import json, os, sys, time
    run_dir = sys.argv[1]
    null = os.stat(os.devnull)
    stdin = os.fstat(0)
    json.dump({"sid": os.getsid(0), "pid": os.getpid(),
               "stdin_is_null": (stdin.st_rdev, stdin.st_ino) == (null.st_rdev, null.st_ino)},
              open(os.path.join(run_dir, "probe.json"), "w"))
    while not os.path.exists(os.path.join(run_dir, "go")):
        time.sleep(0.02)
    for i in range(200):
        print("line", i, flush=True)  # would raise BrokenPipeError if stdout were the parent's pipe
    open(os.path.join(run_dir, "done"), "w").close()
''')


@pytest.fixture
def store(home) -> Store:
    return Store.open(home)


def test_create_run_writes_config_and_launch(home, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    handle = create_run("tiny", ["train.epochs=1", "data.root=mydata"], name="smoke", gpus=[0, 1], store=store)
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", handle.run_id)
    assert handle.run_dir == home.resolve() / "runs" / handle.run_id
    saved = config.load(str(handle.run_dir / "config.yaml"))
    assert config.to_dict(saved) == config.to_dict(handle.config)
    assert saved.name == "smoke" and saved.train.epochs == 1
    assert saved.data.root == str(tmp_path / "mydata")  # pinned: the engine runs from elsewhere
    launch = json.loads((handle.run_dir / "launch.json").read_text())
    assert launch["gpus"] == [0, 1] and launch["preset"] == "tiny" and launch["overrides"][0] == "train.epochs=1"
    run = store.run(handle.run_id)
    assert (run["status"], run["name"], run["method"], run["gpus"]) == ("queued", "smoke", "seca", [0, 1])


def test_create_run_rejects_bad_config(store):
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        create_run("tiny", ["train.epoch=3"], store=store)
    with pytest.raises(ConfigError, match="No preset named 'tinny'; did you mean 'tiny'"):
        create_run("tinny", store=store)
    assert not store.runs_dir.exists() or not any(store.runs_dir.iterdir())  # nothing half-made


def test_parse_gpus():
    assert parse_gpus("2") == 2
    assert parse_gpus("0,2") == [0, 2]
    for bad in ("0", "two", "1,1", "-1", "0,,1", "1,"):
        with pytest.raises(ConfigError, match="--gpus"):
            parse_gpus(bad)


def test_engine_command_resumes_with_its_own_config(tmp_path):
    argv = launcher.engine_command(tmp_path, resume=True)
    assert argv[:4] == [sys.executable, "-m", "engine", "run"]
    assert argv[4] == str(tmp_path / "config.yaml") and argv[-1] == "--resume"


def test_child_is_detached_and_outlives_its_parent_and_pipe(store, tmp_path):
    handle = create_run("tiny", store=store)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    # A parent whose stdout is a pipe we hold, as a TUI's would be; it starts the child and exits.
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys; from seca_tui import launcher; "
         "print(launcher.start(sys.argv[1], command=[sys.executable, sys.argv[2], sys.argv[1]]))",
         str(handle.run_dir), str(probe)],
        stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(REPO)), text=True)
    pid = int(parent.stdout.readline())
    assert parent.wait(30) == 0
    parent.stdout.close()
    seen = json.loads(wait_for(lambda: (handle.run_dir / "probe.json").exists() and (handle.run_dir / "probe.json").read_text()))
    assert seen["pid"] == pid
    assert seen["sid"] != os.getsid(0) and seen["sid"] == pid  # a session of its own, led by the child
    assert seen["stdin_is_null"]
    (handle.run_dir / "go").touch()
    wait_for(lambda: (handle.run_dir / "done").exists(), timeout=30)
    assert "line 199" in (handle.run_dir / "engine.log").read_text()
    launch = json.loads((handle.run_dir / "launch.json").read_text())
    assert launch["pid"] == pid and launch["argv"][1] == str(probe)
    assert store.run(handle.run_id)["status"] == "running"


def test_stop_resume_and_refusals(store, tmp_path):
    command = fake_engine(tmp_path)
    handle = create_run("tiny", store=store)
    pid = launcher.start(handle.run_dir, store=store, command=command(handle.run_dir))
    wait_for(lambda: store.ingest(handle.run_dir) and store.run(handle.run_id)["heartbeat_ts"])
    assert is_alive(pid, None, handle.run_dir)
    with pytest.raises(ConfigError, match="is running; stop it first"):
        launcher.resume(handle.run_id, store, command=command(handle.run_dir))

    launcher.stop(handle.run_id, store)
    wait_for(lambda: store.ingest(handle.run_dir) is not None and store.run(handle.run_id)["status"] == "stopped")
    wait_for(lambda: not is_alive(pid, None, handle.run_dir), timeout=60)  # reaped, not a zombie
    with pytest.raises(ConfigError, match="is stopped, so there is nothing to stop"):
        launcher.stop(handle.run_id, store)

    pid2 = launcher.resume(handle.run_id, store, command=command(handle.run_dir))
    assert pid2 != pid and store.run(handle.run_id)["status"] == "running"
    assert store.run(handle.run_id)["finished"] is None
    os.kill(pid2, signal.SIGKILL)  # no final event: the run is lost
    wait_for(lambda: handle.run_id in store.mark_lost(), timeout=60)
    assert store.run(handle.run_id)["status"] == "lost"
    assert store.run(handle.run_id)["error"] == "fake engine up"  # the last words in engine.log


def test_a_run_killed_by_its_stop_before_it_handles_sigterm_is_stopped(store, tmp_path):
    handle = create_run("tiny", store=store)
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)", str(handle.run_dir)]  # default SIGTERM: die
    pid = launcher.start(handle.run_dir, store=store, command=sleeper)
    launcher.stop(handle.run_id, store)
    wait_for(lambda: not is_alive(pid, None, handle.run_dir), timeout=60)  # bounded; generous for a loaded CI machine
    assert store.mark_lost() == []
    assert store.run(handle.run_id)["status"] == "stopped"


def test_a_finished_run_does_not_resume(store, tmp_path):
    command = fake_engine(tmp_path, seconds=0.2)
    handle = create_run("tiny", store=store)
    launcher.start(handle.run_dir, store=store, command=command(handle.run_dir))
    wait_for(lambda: store.ingest(handle.run_dir) is not None and store.run(handle.run_id)["status"] == "finished")
    with pytest.raises(ConfigError, match="is finished; there is nothing left to run"):
        launcher.resume(handle.run_id, store)


def test_is_alive_is_honest():
    assert is_alive(os.getpid(), None)
    assert is_alive(os.getpid(), "another-host") is None  # cannot tell: heartbeat age decides
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_for(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z")
    assert is_alive(zombie.pid, None) is False  # exited, not yet reaped
    zombie.wait()
    assert is_alive(zombie.pid, None) is False
    assert is_alive(os.getpid(), None, "/no/such/run") is False  # a live pid, but not that run's
    assert is_alive(None, None) is False


AGENT = """
import subprocess, sys, time
rank = subprocess.Popen(sys.argv[1:], start_new_session=True)  # as torchrun starts its ranks
print("rank", rank.pid, flush=True)
time.sleep(120)
"""


def test_ranks_that_outlive_their_agent_keep_the_run_alive_and_stop_reaches_them(store, tmp_path):
    """torchrun's ranks run in sessions of their own: SIGKILL the agent (the pid we record) and they
    go on writing events. The run is not lost, stop signals them, resume waits until they are gone."""
    handle = create_run("tiny", store=store)
    rank_argv = fake_engine(tmp_path, seconds=60)(handle.run_dir)
    agent = launcher.start(handle.run_dir, store=store, command=[sys.executable, "-c", AGENT, *rank_argv])
    wait_for(lambda: store.ingest(handle.run_dir) and store.run(handle.run_id)["heartbeat_ts"])
    rank = int(wait_for(lambda: re.search(r"rank (\d+)", (handle.run_dir / "engine.log").read_text())).group(1))
    os.killpg(agent, signal.SIGKILL)
    wait_for(lambda: not is_alive(agent, None, handle.run_dir), timeout=60)
    assert launcher.run_processes(handle.run_dir) == [rank]
    assert store.mark_lost() == [] and store.run(handle.run_id)["status"] == "running"

    store.update_run(handle.run_id, status="lost")  # as an older seca-tui would have judged it
    with pytest.raises(ConfigError, match=f"still has engine processes \\({rank}\\); end them first"):
        launcher.resume(handle.run_id, store, command=rank_argv)
    store.update_run(handle.run_id, status="running")
    assert launcher.stop(handle.run_id, store) == "stopping"
    wait_for(lambda: store.ingest(handle.run_dir) is not None and store.run(handle.run_id)["status"] == "stopped")
    wait_for(lambda: launcher.run_processes(handle.run_dir) == [], timeout=60)
