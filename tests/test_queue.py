"""The run queue with real processes and a real SQLite file: device lists, slots per device, FIFO,
multi-device runs, cancelling, a dead run freeing its slot, racing schedulers, the background
scheduler's lock, and the CLI around it. Engines here are the fake one (seconds, no torch); the
real engine goes through the queue in test_reliability.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import ConfigError
from seca_tui import launcher, queue
from seca_tui.process import is_alive
from seca_tui.store import FINAL, Store
from tests.commands import cli, seca_process
from tests.engine_runs import wait_for
from tests.runlog import fake_engine

REPO = Path(__file__).resolve().parents[1]

NVIDIA_SMI = """GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-aaaa)
GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-bbbb)
  MIG 3g.40gb     Device  0: (UUID: MIG-1111)
  MIG 3g.40gb     Device  1: (UUID: MIG-2222)
GPU 2: NVIDIA A100-SXM4-80GB (UUID: GPU-cccc)
"""


@pytest.fixture
def store(home) -> Store:
    return Store.open(home)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Engines are the fake one, running ``seconds``; no background scheduler is spawned."""
    def use(seconds: float = 0.5):
        monkeypatch.setattr(launcher, "engine_command", fake_engine(tmp_path, seconds=seconds))
    use()
    monkeypatch.setattr(queue, "ensure_scheduler", lambda *a, **k: False)
    return use


def submit(store: Store, gpus=None) -> str:
    handle = launcher.create_run("tiny", store=store, gpus=gpus, queued=True)
    return handle.run_id


def drive(store: Store, run_ids: list[str], available: list[str], limit: int = 1, timeout: float = 60) -> list[set]:
    """Call schedule() until every run has ended; returns the set of running runs seen at each pass."""
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        queue.schedule(store, available, limit)
        for run_id in run_ids:
            store.ingest(store.run(run_id)["run_dir"])
        store.mark_lost()
        runs = [store.run(r) for r in run_ids]
        seen.append({r["run_id"] for r in runs if r["status"] == "running"})
        if all(r["status"] in FINAL for r in runs):
            return seen
        time.sleep(0.05)
    raise TimeoutError([store.run(r)["status"] for r in run_ids])


def interval(store: Store, run_id: str) -> tuple[float, float]:
    """From the engine's first event to its last: when it was running."""
    evs = store.events(run_id)
    return evs[0]["ts"], evs[-1]["ts"]


def engine_line(store: Store, run_id: str) -> str:
    """What the fake engine printed about its processes and devices."""
    log = (Path(store.run(run_id)["run_dir"]) / "engine.log").read_text()
    return next(line for line in log.splitlines() if line.startswith("processes"))


# ----------------------------------------------------------------------------------------- devices


def test_devices_come_from_the_environment_then_nvidia_smi(monkeypatch):
    monkeypatch.setenv("SECA_TUI_GPUS", "0, 1,3")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    assert queue.devices() == ["0", "1", "3"]
    monkeypatch.delenv("SECA_TUI_GPUS")
    assert queue.devices() == ["5"]  # a slice given by Slurm or the user
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert queue.devices() == ["cpu"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(queue, "_cache", {})
    monkeypatch.setattr(queue, "_nvidia_smi", lambda: NVIDIA_SMI)
    assert queue.devices() == ["0", "MIG-1111", "MIG-2222", "2"]
    monkeypatch.setattr(queue, "_cache", {})
    monkeypatch.setattr(queue, "_nvidia_smi", lambda: "")  # no nvidia-smi, or no GPU
    assert queue.devices() == ["cpu"]


def test_without_nvidia_smi_there_is_one_cpu_device(monkeypatch, tmp_path):
    for var in ("SECA_TUI_GPUS", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to run
    monkeypatch.setattr(queue, "_cache", {})
    assert queue.devices() == ["cpu"]


def test_runs_the_queue_could_never_start_are_refused():
    queue.check_fits(None, ["cpu"])
    queue.check_fits(2, ["0", "1"])
    queue.check_fits([1], ["0", "1"])
    with pytest.raises(ConfigError, match="--gpus 3 needs 3 devices, but the queue has 2"):
        queue.check_fits(3, ["0", "1"])
    with pytest.raises(ConfigError, match="names device.s. 4"):
        queue.check_fits([0, 4], ["0", "1"])


# ----------------------------------------------------------------------------------------- schedule


def test_one_run_per_device_runs_them_one_after_another(store, fake):
    run_ids = [submit(store) for _ in range(3)]
    assert [store.run(r)["status"] for r in run_ids] == ["queued"] * 3
    seen = drive(store, run_ids, ["fake0"])
    assert max(len(s) for s in seen) == 1
    spans = sorted(interval(store, r) for r in run_ids)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # no overlap
    assert [store.run(r)["status"] for r in run_ids] == ["finished"] * 3
    assert all(store.run(r)["device"] == "fake0" for r in run_ids)
    assert [json.loads((Path(store.run(r)["run_dir"]) / "launch.json").read_text())["devices"] for r in run_ids] \
        == [["fake0"]] * 3
    assert engine_line(store, run_ids[0]) == "processes 1 devices fake0 fresh"  # CUDA_VISIBLE_DEVICES


def test_first_in_first_out(store, fake):
    run_ids = [submit(store) for _ in range(3)]
    order = []
    deadline = time.time() + 60
    while len(order) < 3 and time.time() < deadline:
        order += [r for r, _ in queue.schedule(store, ["fake0"], 1)]
        time.sleep(0.05)
    assert order == run_ids


def test_two_per_device_and_two_devices(store, fake):
    fake(1.5)
    run_ids = [submit(store) for _ in range(5)]
    started = queue.schedule(store, ["a", "b"], 2)
    assert [r for r, _ in started] == run_ids[:4]
    # spread: the least loaded device first
    assert [d for _, d in started] == [["a"], ["b"], ["a"], ["b"]]
    assert queue.schedule(store, ["a", "b"], 2) == []  # full: the fifth waits
    drive(store, run_ids, ["a", "b"], 2)


def test_a_multi_device_run_gets_its_devices_and_a_process_each(store, fake):
    wide = submit(store, gpus=2)
    narrow = submit(store)
    started = dict(queue.schedule(store, ["0", "1"], 1))
    assert started == {wide: ["0", "1"]}  # the one-device run waits: no free device left
    wait_for(lambda: (Path(store.run(wide)["run_dir"]) / "engine.log").exists()
             and "processes" in (Path(store.run(wide)["run_dir"]) / "engine.log").read_text(), timeout=30)
    assert engine_line(store, wide) == "processes 2 devices 0,1 fresh"
    drive(store, [wide, narrow], ["0", "1"])


def test_a_run_that_needs_more_than_is_free_holds_back_later_runs(store, fake):
    fake(1.0)
    first = submit(store)
    wide = submit(store, gpus=2)
    later = submit(store)
    assert dict(queue.schedule(store, ["0", "1"], 1)) == {first: ["0"]}
    # device 1 is free, but `wide` came before `later`: nothing starts until `first` is done
    assert queue.schedule(store, ["0", "1"], 1) == []
    seen = drive(store, [first, wide, later], ["0", "1"])
    assert not any({first, later} <= s for s in seen)
    assert store.run(wide)["device"] == "0,1"


def test_named_devices_wait_for_those(store, fake):
    fake(1.0)
    on0 = submit(store)
    on1 = submit(store, gpus=[1])
    assert dict(queue.schedule(store, ["0", "1"], 1)) == {on0: ["0"], on1: ["1"]}


def test_a_dead_run_frees_its_device(store, fake):
    fake(60)
    first, second = submit(store), submit(store)
    assert dict(queue.schedule(store, ["fake0"], 1)) == {first: ["fake0"]}
    wait_for(lambda: store.ingest(store.run(first)["run_dir"]) and store.run(first)["heartbeat_ts"])
    os.kill(store.run(first)["pid"], signal.SIGKILL)
    wait_for(lambda: not is_alive(store.run(first)["pid"], None, store.run(first)["run_dir"]), timeout=60)
    assert dict(queue.schedule(store, ["fake0"], 1)) == {second: ["fake0"]}
    assert store.run(first)["status"] == "lost"
    launcher.stop(second, store)


def test_an_ended_run_whose_process_still_exits_holds_its_device(store, fake):
    fake(60)
    first, second = submit(store), submit(store)
    queue.schedule(store, ["fake0"], 1)
    store.update_run(first, status="finished", finished=time.time())  # its final event is in, it is exiting
    assert queue.schedule(store, ["fake0"], 1) == []
    launcher.signal_run(store.run(first)["pid"], signal.SIGKILL)
    wait_for(lambda: not is_alive(store.run(first)["pid"], None, store.run(first)["run_dir"]), timeout=60)
    assert dict(queue.schedule(store, ["fake0"], 1)) == {second: ["fake0"]}
    launcher.stop(second, store)


def test_a_started_engine_is_not_started_twice(store, fake):
    """A scheduler that died after starting an engine but before its commit left the run queued."""
    fake(60)
    run_id = submit(store)
    pid, _ = launcher.spawn(store.run(run_id)["run_dir"], devices=["fake0"])
    assert store.run(run_id)["status"] == "queued"
    assert dict(queue.schedule(store, ["fake0"], 1)) == {run_id: ["fake0"]}
    assert store.run(run_id)["pid"] == pid
    assert (Path(store.run(run_id)["run_dir"]) / "engine.log").read_text().count("fake engine up") <= 1
    launcher.stop(run_id, store)


def test_nothing_queued_takes_no_write_lock(store, fake):
    import sqlite3

    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        t0 = time.perf_counter()
        assert queue.schedule(store, ["fake0"], 1) == []
        assert time.perf_counter() - t0 < 1
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_runs_started_at_once_are_not_the_queues(store, fake):
    handle = launcher.create_run("tiny", store=store)  # `seca-tui run` without --queue: queued, no queued_at
    assert queue.pending(store) == 0 and queue.schedule(store, ["fake0"], 1) == []
    assert store.run(handle.run_id)["status"] == "queued"


def test_a_run_started_without_the_queue_holds_its_device(store, fake, monkeypatch):
    """`seca-tui run` without --queue takes the first visible GPU (or the CPU): the queue counts it."""
    fake(60)
    monkeypatch.delenv("SECA_TUI_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    direct = launcher.create_run("tiny", ["train.device=auto"], store=store)
    launcher.start(direct.run_dir, store=store)
    assert store.run(direct.run_id)["device"] == "0"
    first, second = submit(store), submit(store)
    assert dict(queue.schedule(store)) == {first: ["1"]}  # not GPU 0, which the direct run uses
    launcher.stop(first, store)
    launcher.stop(direct.run_id, store)
    launcher.cancel(second, store)

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # no GPU: a direct run holds the one CPU device
    on_cpu = launcher.create_run("tiny", store=store)
    launcher.start(on_cpu.run_dir, store=store)
    assert store.run(on_cpu.run_id)["device"] == "cpu"
    waiting = submit(store)
    assert queue.schedule(store) == []
    launcher.stop(on_cpu.run_id, store)
    launcher.cancel(waiting, store)


def test_held_devices_follow_what_the_engine_will_use(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    assert queue.held_devices("auto", None) == ["4"] and queue.held_devices("cuda", 2) == ["4", "5"]
    assert queue.held_devices("cuda:1", None) == ["5"] and queue.held_devices("cpu", 2) == ["cpu"]
    assert queue.held_devices("auto", [0, 2]) == ["0", "2"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert queue.held_devices("auto", None) == ["cpu"]


# ----------------------------------------------------------------------------------------- cancel


def test_cancel_a_queued_run(store, fake):
    fake(60)
    running, waiting = submit(store), submit(store)
    queue.schedule(store, ["fake0"], 1)
    launcher.cancel(waiting, store)
    assert store.run(waiting)["status"] == "cancelled" and store.run(waiting)["finished"]
    with pytest.raises(ConfigError, match="is running, and only a queued run can be cancelled; `seca-tui stop`"):
        launcher.cancel(running, store)
    with pytest.raises(ConfigError, match="is cancelled, and only a queued run"):
        launcher.cancel(waiting, store)
    assert launcher.stop(running, store) == "stopping"
    drive(store, [running], ["fake0"])
    assert queue.schedule(store, ["fake0"], 1) == []  # the cancelled run never starts
    assert not (Path(store.run(waiting)["run_dir"]) / "engine.log").exists()
    assert store.run(waiting)["status"] == "cancelled"


def test_stop_on_a_queued_run_cancels_it_and_resume_refuses_a_queued_one(store, fake):
    run_id = submit(store)
    with pytest.raises(ConfigError, match="is queued and starts when a device is free"):
        launcher.resume(run_id, store)
    assert launcher.stop(run_id, store) == "cancelled"
    assert store.run(run_id)["status"] == "cancelled"
    launcher.resume(run_id, store)  # a cancelled run may still be started by hand, from the beginning
    wait_for(lambda: store.ingest(store.run(run_id)["run_dir"]) is not None
             and store.run(run_id)["status"] == "finished")


def test_cli_resume_queue_waits_for_the_device_then_resumes_the_run(home, fake, monkeypatch):
    """``resume --queue``: a stopped run waits behind the run holding the only device, then the queue
    resumes it (engine started with --resume, not from the beginning) and it finishes."""
    monkeypatch.setenv("SECA_TUI_GPUS", "fake0")
    fake(60)
    store = Store.open(home)
    stopped = cli("run", "tiny", "--queue", "--detach").stdout.splitlines()[-1]
    wait_for(lambda: store.ingest(store.run(stopped)["run_dir"]) is not None and store.run(stopped)["heartbeat_ts"])
    launcher.stop(stopped, store)
    wait_for(lambda: store.ingest(store.run(stopped)["run_dir"]) is not None and store.run(stopped)["status"] == "stopped")
    wait_for(lambda: not is_alive(store.run(stopped)["pid"], None))  # until then it still holds the device
    holder = cli("run", "tiny", "--queue", "--detach").stdout.splitlines()[-1]
    assert store.run(holder)["status"] == "running" and store.run(holder)["device"] == "fake0"

    result = cli("resume", stopped, "--queue", "--detach")
    assert result.exit_code == 0 and f"Run {stopped} queued to resume." in result.stdout, result.output
    run = store.run(stopped)
    assert (run["status"], run["device"]) == ("queued", None)  # it holds no device while it waits
    assert f"{stopped}" in cli("runs", "--status", "queued").stdout
    assert queue.schedule(store) == []  # the device is still taken

    fake(0.2)
    wait_for(lambda: store.ingest(store.run(holder)["run_dir"]) is not None and store.run(holder)["heartbeat_ts"])
    launcher.stop(holder, store)
    wait_for(lambda: store.ingest(store.run(holder)["run_dir"]) is not None and store.run(holder)["status"] == "stopped")
    # the device is free once the holder's process has exited, a moment after its run_stopped
    assert wait_for(lambda: queue.schedule(store), timeout=60) == [(stopped, ["fake0"])]
    wait_for(lambda: store.ingest(store.run(stopped)["run_dir"]) is not None and store.run(stopped)["status"] == "finished")
    starts = [line for line in (Path(run["run_dir"]) / "engine.log").read_text().splitlines() if line.startswith("processes")]
    assert starts == ["processes 1 devices fake0 fresh", "processes 1 devices fake0 resume"]

    result = cli("resume", stopped, "--queue")
    assert result.exit_code == 1 and "is finished; there is nothing left to run" in result.stderr


# ----------------------------------------------------------------------------------------- racing schedulers

RACER = """
import sys, time
from pathlib import Path
from seca_tui import launcher, queue
from seca_tui.store import Store
# the test wrote the fake engine's script once; rewriting it here would race a starting engine's read
script = Path(sys.argv[2]) / "fake_engine.py"
launcher.engine_command = lambda run_dir, resume=False, nproc=1: [sys.executable, str(script), str(run_dir), sys.argv[5], str(nproc)]
store = Store(sys.argv[1])
available, until = sys.argv[3].split(","), float(sys.argv[4])
while time.time() < until:
    for run_id, devices in queue.schedule(store, available, 1):
        print(run_id, ",".join(devices), flush=True)
    time.sleep(0.01)
"""


@pytest.mark.parametrize("n_devices, seconds", [(8, 30.0), (2, 0.5)])
def test_racing_schedulers_never_start_a_run_twice_nor_overfill(store, tmp_path, n_devices, seconds):
    """Four scheduler processes at once (CLIs, TUIs): every run starts once, no device takes two."""
    fake_engine(tmp_path, seconds=seconds)  # writes the script the racers use
    run_ids = [submit(store) for _ in range(8)]
    available = [f"g{i}" for i in range(n_devices)]
    until = time.time() + (6 if n_devices == 8 else 14)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(store.path), str(tmp_path), ",".join(available),
                                str(until), str(seconds)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(4)]
    starts = []
    for racer in racers:
        out, err = racer.communicate(timeout=60)
        assert racer.returncode == 0, err
        starts += [line.split() for line in out.splitlines()]
    assert sorted(r for r, _ in starts) == sorted(run_ids)  # each exactly once
    for run_id in run_ids:
        log = Path(store.run(run_id)["run_dir"]) / "engine.log"
        try:  # generous: on a loaded CI machine, processes left by earlier tests slow a start
            wait_for(lambda: "fake engine up" in log.read_text(), timeout=120)
        except TimeoutError:
            raise AssertionError(f"{run_id} never came up: row {store.run(run_id)}, log {log.read_text()!r}") from None
        assert log.read_text().count("fake engine up") == 1
    if n_devices == 8:
        assert sorted(d for _, d in starts) == available  # one run per device
        for run_id in run_ids:
            launcher.stop(run_id, store)
    else:
        for run_id in run_ids:
            wait_for(lambda: store.ingest(store.run(run_id)["run_dir"]) is not None
                     and store.run(run_id)["status"] in FINAL, timeout=120)
        for device in available:
            spans = sorted(interval(store, r) for r in run_ids if store.run(r)["device"] == device)
            assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), (device, spans)


# ----------------------------------------------------------------------------------------- serve


def test_serve_runs_until_nothing_is_queued_and_one_background_scheduler_at_a_time(store, fake, monkeypatch):
    monkeypatch.setenv("SECA_TUI_GPUS", "fake0")
    run_ids = [submit(store) for _ in range(2)]
    lock = queue.lock_path()
    held = queue._try_lock(lock)
    lines = []

    class Out:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    queue.serve(store, 0.05, Out(), lock=lock)  # another background scheduler holds the lock
    assert lines == [] and queue.pending(store) == 2
    os.close(held)
    queue.serve(store, 0.05, Out(), lock=lock)
    assert [line.split()[2] for line in lines] == run_ids and queue.pending(store) == 0
    assert queue._try_lock(lock) is not None  # given back


def test_a_run_submitted_while_the_scheduler_winds_down_is_not_stranded(store, fake, monkeypatch):
    monkeypatch.setenv("SECA_TUI_GPUS", "fake0")
    first = submit(store)
    calls = []
    real_pending = queue.pending

    def pending(s):
        calls.append(1)
        count = real_pending(s)
        if count == 0 and len(calls) == 2:  # right after the scheduler saw an empty queue
            submit(store)
            return 0
        return count
    monkeypatch.setattr(queue, "pending", pending)
    queue.serve(store, 0.05, open(os.devnull, "w"), lock=queue.lock_path())
    assert real_pending(store) == 0  # the last look, after the lock was given up, found it
    assert all(r["status"] != "queued" for r in store.runs())



# ----------------------------------------------------------------------------------------- CLI


def test_cli_queue_trials_runs_cancel(home, fake, monkeypatch):
    monkeypatch.setenv("SECA_TUI_GPUS", "fake0")
    fake(60)
    result = cli("run", "tiny", "--trials", "all", "--detach")
    assert result.exit_code == 0, result.output
    run_ids = result.stdout.splitlines()[-3:]
    assert result.stdout.count(") started on fake0: ") == 1 and result.stdout.count(") queued: ") == 2
    store = Store.open(home)
    runs = {r["run_id"]: r for r in store.runs()}
    assert [runs[r]["name"] for r in run_ids] == ["tiny-trial0", "tiny-trial1", "tiny-trial2"]
    assert [store.run(r)["config"]["scenario"]["trial"] for r in run_ids] == [0, 1, 2]
    assert [runs[r]["status"] for r in run_ids] == ["running", "queued", "queued"]
    listed = cli("runs").stdout
    assert listed.count("queued") == 2 and "fake0" in listed
    assert json.loads(cli("runs", "--status", "queued", "--json").stdout)[0]["status"] == "queued"
    assert cli("cancel", run_ids[2]).exit_code == 0
    assert store.run(run_ids[2])["status"] == "cancelled"
    assert "was queued; it is cancelled" in cli("stop", run_ids[1]).stdout
    result = cli("cancel", run_ids[0])
    assert result.exit_code == 1 and "only a queued run can be cancelled" in result.stderr
    assert "Asked run" in cli("stop", run_ids[0]).stdout


def test_cli_queue_command(home, fake, monkeypatch):
    monkeypatch.setenv("SECA_TUI_GPUS", "a,b")
    fake(60)
    result = cli("run", "tiny", "--queue", "--per-gpu", "1", "--detach")
    assert result.exit_code == 0 and "started on a" in result.stdout
    store = Store.open(home)
    assert queue.per_gpu(store) == 1
    for _ in range(2):
        handle = launcher.create_run("tiny", store=store, queued=True)
    result = cli("queue", "--once", "--per-gpu", "1")
    assert result.stdout.startswith("Devices: a, b (1 run(s) per device); 2 queued, 1 running.")
    assert f"started {store.runs(status='running')[0]['run_id']} on b" in result.stdout
    assert store.run(handle.run_id)["status"] == "queued"
    result = cli("queue", "--once", "--per-gpu", "2")
    assert f"started {handle.run_id} on a" in result.stdout and queue.per_gpu(store) == 2
    for run in store.runs(status="running"):
        launcher.stop(run["run_id"], store)


@pytest.mark.parametrize("args, fragments", [
    (["run", "tiny", "--trials", "5"], ["--trials 5", "(3,", "scenario.trials"]),
    (["run", "tiny", "--trials", "some"], ["--trials takes 'all' or a count"]),
    (["run", "tiny", "--queue", "--gpus", "2"], ["--gpus 2 needs 2 devices, but the queue has 1"]),
    (["run", "tiny", "--queue", "--per-gpu", "0"], ["--per-gpu needs at least 1"]),
    (["cancel", "nope"], ["No run matches 'nope'"]),
])
def test_queue_mistakes_are_one_sentence_and_create_nothing(home, fake, monkeypatch, args, fragments):
    monkeypatch.setenv("SECA_TUI_GPUS", "fake0")
    result = cli(*args)
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.output
    for fragment in fragments:
        assert fragment in result.stderr
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_every_command_gives_the_queue_a_turn(home, fake, monkeypatch):
    monkeypatch.setenv("SECA_TUI_GPUS", "fake0")
    store = Store.open(home)
    run_id = submit(store)
    assert cli("runs").exit_code == 0
    assert store.run(run_id)["status"] == "running"
    wait_for(lambda: store.ingest(store.run(run_id)["run_dir"]) is not None and store.run(run_id)["status"] == "finished")


# ----------------------------------------------------------------------------------------- the real engine


@pytest.mark.slow
def test_three_real_runs_through_the_queue_one_at_a_time(home, tmp_path):
    """Three trials of the fixture preset queued at once on one fake device, one run at a time: the
    background scheduler starts each when the one before has ended, and all finish. A fourth,
    submitted meanwhile and cancelled, never starts."""
    from tests.engine_runs import engine_env, fixture_preset

    preset = fixture_preset(tmp_path)
    env = engine_env(home) | {"SECA_TUI_GPUS": "fake0", "OMP_NUM_THREADS": "1"}

    def seca(*args: str) -> str:
        return seca_process(env, *args, timeout=120).stdout

    out = seca("run", preset, "--set", "scenario.trials=3", "--trials", "all", "--per-gpu", "1", "--detach")
    run_ids = out.splitlines()[-3:]
    extra = seca("run", preset, "--queue", "--detach").splitlines()[-1]
    listed = {r["run_id"]: r["status"] for r in json.loads(seca("runs", "--json"))}
    assert [listed[r] for r in [*run_ids, extra]] == ["running", "queued", "queued", "queued"]
    assert "Cancelled run" in seca("cancel", extra)

    store = Store.open(home)

    def all_done() -> bool:
        store.ingest_all()
        return all(store.run(r)["status"] in FINAL for r in run_ids)
    wait_for(all_done, timeout=600, interval=0.5)
    assert [store.run(r)["status"] for r in run_ids] == ["finished"] * 3
    assert [store.run(r)["device"] for r in run_ids] == ["fake0"] * 3
    spans = [interval(store, r) for r in run_ids]
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # one after another, in queue order
    assert store.run(extra)["status"] == "cancelled"
    assert not (home / "runs" / extra / "events.jsonl").exists()
    # the background scheduler has nothing left to do, so it has gone
    wait_for(lambda: (fd := queue._try_lock(queue.lock_path(home))) is not None and not os.close(fd), timeout=30)
    assert "started" in (home / "queue.log").read_text()
