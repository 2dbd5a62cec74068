"""Runs on a real Slurm: submitted through submitit, tracked, stopped, requeued, lost and resumed.

`.ci/run` starts a single-node Slurm (`.ci/slurm-up`: slurmctld, slurmd and munged on this machine, no
accounting, no GPUs) before the tests; elsewhere these tests skip, saying how to start one. Every
run is the tiny preset on the CPU, deterministic, so an interrupted run must end with the very
accuracy matrix of an uninterrupted one.
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seca_tui import slurm
from seca_tui.store import Store
from tests.commands import seca_process
from tests.engine_runs import REPO, engine_env, events, log_tails, wait_for

pytestmark = pytest.mark.slow

# long enough tasks (~4 s each here) that a stop or a requeue lands inside the second one
LONG = ["--set", "train.epochs=60", "--set", "train.milestones=[30]"]


def _slurm_up() -> str | None:
    """Why no Slurm answers here, or None."""
    if shutil.which("sinfo") is None:
        return "Slurm's commands are not installed"
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0 or not any(s in done.stdout for s in ("idle", "mixed", "allocated")):
        return f"no Slurm node takes jobs ({(done.stderr or done.stdout).strip()})"
    return None


@pytest.fixture(scope="module")
def cluster():
    why = _slurm_up()
    if why:
        if os.environ.get("SECA_TUI_REQUIRE_SLURM"):  # .ci/run sets it: CI never skips these
            pytest.fail(f"CI must test against a real Slurm, but {why}: .ci/slurm-up should have started it.")
        pytest.skip(f"{why}; start a local one with `sudo .ci/slurm-up`.")


@pytest.fixture
def env(home, cluster):
    return engine_env(home)


def submit(env: dict, *args: str) -> list[str]:
    """``seca-tui run tiny --slurm ARGS --detach``: the run ids it prints."""
    out = seca_process(env, "run", "tiny", "--slurm", "--detach", *args).stdout
    return [line for line in out.splitlines() if line and not line.startswith((" ", "Submitted"))]


def settled(home: Path, run_id: str) -> dict:
    """The run after one forced Slurm query (tests do not wait out the poll interval)."""
    store = Store.open(home)
    store.ingest_all()
    slurm.refresh(store, force=True)
    return store.run(run_id)


def until(home: Path, run_id: str, predicate, timeout: float = 240) -> dict:
    run_dir = home / "runs" / run_id

    def check():
        run = settled(home, run_id)
        return run if predicate(run) else None

    def describe():
        run = settled(home, run_id)
        squeue = subprocess.run(["squeue", "-h", "-o", "%i %T %r"], capture_output=True, text=True).stdout
        err = "".join(p.read_text()[-1500:] for p in (run_dir / "slurm").glob("*.err")) if (run_dir / "slurm").exists() else ""
        return f"run: {run['status']} {run['slurm_job']} {run['slurm_reason']} {run['error']}\nsqueue: {squeue}\n{err}\n{log_tails(run_dir)}"

    return wait_for(check, timeout=timeout, interval=0.3, describe=describe)


def ended(run: dict, *also: str) -> bool:
    """The run has a final status (or one of ``also``) and its job has ended."""
    return run["status"] not in ("queued", "running", *also) and run["slurm_state"] in slurm.ENDED


def evaluated(run_dir: Path, tasks: int) -> bool:
    return sum(e["type"] == "eval" for e in events(run_dir)) >= tasks


def matrix_of(home: Path, run_id: str) -> list:
    return Store.open(home).run(run_id)["matrix"]


def engine_pid(run_dir: Path) -> int:
    """The engine process of the job's latest attempt (the node records it)."""
    found = wait_for(lambda: slurm.attempts(run_dir), timeout=120)
    return found[-1]["pid"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cluster):
    """An uninterrupted Slurm run of the long tiny config: its home, run id and accuracy matrix."""
    home = tmp_path_factory.mktemp("reference") / "home"
    env = engine_env(home)
    (run_id,) = submit(env, *LONG)
    run = until(home, run_id, ended)
    assert run["status"] == "finished", run["error"]
    return home, run_id, run["matrix"]


def test_a_submitted_run_goes_pending_running_completed_and_keeps_its_job_in_the_run_dir(env, home):
    # begin=now+4: Slurm itself holds the job PENDING (BeginTime) for a moment, so that state is seen
    (run_id,) = submit(env, "--slurm-opt", "begin=now+4")
    seen = []

    def record(run):
        if run["slurm_reason"] not in seen:
            seen.append(run["slurm_reason"])
        return ended(run)

    run = until(home, run_id, record)
    assert run["status"] == "finished", run["error"]
    assert "PENDING (BeginTime)" in seen, seen  # Slurm's own reason: only a real query gives it
    assert any(s and s.startswith("RUNNING on ") for s in seen), seen
    assert run["slurm_state"] == "COMPLETED"
    job = run["slurm_job"]
    # metrics are the engine's own: Last and Avg from its eval events
    accs = [e["acc"] for e in events(home / "runs" / run_id) if e["type"] == "eval"]
    assert run["last"] == pytest.approx(accs[-1]) and run["avg"] == pytest.approx(sum(accs) / len(accs))
    shown = json.loads(seca_process(env, "show", run_id, "--json").stdout)
    assert shown["slurm_job"] == job and shown["slurm_state"] == "COMPLETED"
    folder = home / "runs" / run_id / "slurm"
    assert (folder / f"{job}_submission.sh").is_file()
    assert "#SBATCH --signal=USR2@" in (folder / f"{job}_submission.sh").read_text()
    assert (folder / f"{job}_0_log.out").is_file() and (folder / f"{job}_0_log.err").is_file()
    assert json.loads((home / "runs" / run_id / "launch.json").read_text())["slurm"]["jobs"] == [job]
    assert f"Slurm job {job}: COMPLETED" in seca_process(env, "show", run_id).stdout


def test_trials_are_one_array_job_whose_elements_run_one_at_a_time(env, home):
    run_ids = submit(env, "--trials", "3", "--max-running", "1")
    assert len(run_ids) == 3
    jobs = [Store.open(home).run(r)["slurm_job"] for r in run_ids]
    array = {j.split("_")[0] for j in jobs}
    assert len(array) == 1 and sorted(j.split("_")[1] for j in jobs) == ["0", "1", "2"], jobs
    most = 0
    deadline = time.time() + 300
    while time.time() < deadline:
        running = subprocess.run(["squeue", "-h", "-r", "-t", "RUNNING", "-j", next(iter(array)), "-o", "%i"],
                                 capture_output=True, text=True).stdout.split()
        most = max(most, len(running))
        runs = [settled(home, r) for r in run_ids]
        if all(ended(r) for r in runs):
            break
        time.sleep(0.5)
    assert [r["status"] for r in runs] == ["finished"] * 3, [r["error"] for r in runs]
    assert most == 1
    # each run has its own config (trial k's class order) and its own Slurm output, through its slurm/ folder
    assert len({json.dumps(r["config"]["scenario"]) for r in runs}) == 3
    for run, job in zip(runs, jobs):
        assert (home / "runs" / run["run_id"] / "slurm" / f"{job}_0_log.out").is_file()


def test_gpus_2_runs_two_torchrun_ranks_inside_one_job(env, home):
    (run_id,) = submit(env, "--gpus", "2")  # tiny is train.device=cpu: two CPU ranks, no GPU asked of Slurm
    run = until(home, run_id, ended)
    assert run["status"] == "finished", run["error"]
    run_dir = home / "runs" / run_id
    assert (run_dir / "engine.rank1.log").is_file()
    script = next((run_dir / "slurm").glob("*_submission.sh")).read_text()
    assert "--gpus-per-node" not in script and "--ntasks-per-node=1" in script


def test_stop_cancels_the_job_after_a_checkpoint_and_resume_ends_with_the_uninterrupted_matrix(env, home, reference):
    (run_id,) = submit(env, *LONG)
    run_dir = home / "runs" / run_id
    wait_for(lambda: evaluated(run_dir, 1), timeout=180, describe=lambda: log_tails(run_dir))
    seca_process(env, "stop", run_id)
    run = until(home, run_id, ended)
    assert run["status"] == "stopped" and run["slurm_state"] == "CANCELLED", (run["status"], run["slurm_state"])
    stopped = [e for e in events(run_dir) if e["type"] == "run_stopped"]
    assert stopped and stopped[-1]["after_task"] == 0
    seca_process(env, "resume", run_id, "--detach")
    run = until(home, run_id, lambda r: ended(r, "stopped"))
    assert run["status"] == "finished", run["error"]
    assert run["matrix"] == reference[2]
    assert len(json.loads((run_dir / "launch.json").read_text())["slurm"]["jobs"]) == 2  # resubmitted


def test_a_requeued_job_resumes_by_itself_with_one_history(env, home, reference):
    (run_id,) = submit(env, *LONG)
    run_dir = home / "runs" / run_id
    wait_for(lambda: evaluated(run_dir, 1), timeout=180, describe=lambda: log_tails(run_dir))
    job = Store.open(home).run(run_id)["slurm_job"]
    subprocess.run(["scontrol", "requeue", job], check=True)  # what a preemption with requeue does
    run = until(home, run_id, lambda r: r["slurm_state"] == "PENDING" and r["status"] == "queued")
    # Slurm holds a requeued job for a while (BeginTime); the test lets it start at once
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    run = until(home, run_id, lambda r: ended(r, "stopped"))
    assert run["status"] == "finished", run["error"]
    assert run["matrix"] == reference[2]
    starts = [e for e in events(run_dir) if e["type"] == "run_started"]
    assert [e.get("resumed", False) for e in starts] == [False, True]
    assert [a["job"] for a in slurm.attempts(run_dir)] == [job, job]
    assert "attempts: " in seca_process(env, "show", run_id).stdout


def test_the_time_limit_warning_checkpoints_and_the_job_requeues_itself(env, home, reference):
    (run_id,) = submit(env, *LONG)
    run_dir = home / "runs" / run_id
    wait_for(lambda: evaluated(run_dir, 1), timeout=180, describe=lambda: log_tails(run_dir))
    job = Store.open(home).run(run_id)["slurm_job"]
    # what Slurm sends signal_delay seconds before the time limit (#SBATCH --signal=USR2@...)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    run = until(home, run_id, lambda r: r["slurm_state"] == "PENDING" and r["status"] == "queued")
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)  # skip Slurm's hold
    run = until(home, run_id, lambda r: ended(r, "stopped"))
    assert run["status"] == "finished", run["error"]
    assert run["matrix"] == reference[2]
    stopped = [e for e in events(run_dir) if e["type"] == "run_stopped"]
    assert len(stopped) == 1 and stopped[0]["after_task"] >= 0  # it stopped after a task checkpoint
    assert "requeueing job" in next((run_dir / "slurm").glob("*_0_log.out")).read_text()


def test_an_engine_killed_by_sigkill_is_lost_with_slurms_reason_and_resume_recovers_it(env, home, reference):
    (run_id,) = submit(env, *LONG)
    run_dir = home / "runs" / run_id
    wait_for(lambda: evaluated(run_dir, 1), timeout=180, describe=lambda: log_tails(run_dir))
    os.kill(engine_pid(run_dir), signal.SIGKILL)
    run = until(home, run_id, lambda r: r["status"] == "lost")
    assert run["slurm_state"] == "FAILED"
    assert f"Slurm job {run['slurm_job']} ended FAILED with exit code" in run["error"]
    seca_process(env, "resume", run_id, "--detach")
    run = until(home, run_id, lambda r: ended(r, "lost"))
    assert run["status"] == "finished", run["error"]
    assert run["matrix"] == reference[2]


def test_a_job_past_its_time_limit_is_lost_with_timeout_and_resume_with_a_longer_limit_recovers_it(env, home):
    # Slurm holds the job for 5 s; meanwhile its events.jsonl becomes a FIFO that nobody reads: the
    # engine blocks opening it, as on a hung network filesystem, and no stop signal can end that
    (run_id,) = submit(env, "--time", "1", "--slurm-opt", "begin=now+5")
    run_dir = home / "runs" / run_id
    os.mkfifo(run_dir / "events.jsonl")
    run = until(home, run_id, lambda r: r["status"] == "lost", timeout=240)
    assert run["slurm_state"] == "TIMEOUT"
    assert f"Slurm job {run['slurm_job']} ended TIMEOUT after 00:01:" in run["error"], run["error"]
    (run_dir / "events.jsonl").unlink()
    seca_process(env, "resume", run_id, "--slurm", "--time", "10", "--detach")
    run = until(home, run_id, lambda r: ended(r, "lost"))
    assert run["status"] == "finished", run["error"]
    assert json.loads((run_dir / "launch.json").read_text())["slurm"]["options"]["time"] == "10"


def test_a_pending_job_cancelled_leaves_nothing_running(env, home):
    (run_id,) = submit(env, "--slurm-opt", "begin=now+600")
    run = until(home, run_id, lambda r: r["slurm_reason"] == "PENDING (BeginTime)")
    seca_process(env, "cancel", run_id)
    run = until(home, run_id, lambda r: r["slurm_state"] == "CANCELLED")
    assert run["status"] == "cancelled"
    left = subprocess.run(["squeue", "-h", "-j", run["slurm_job"], "-t", "PENDING,RUNNING"], capture_output=True, text=True)
    assert left.stdout.strip() == ""
    assert not events(home / "runs" / run_id)


def test_a_sweep_is_one_array_job(env, home):
    out = seca_process(env, "sweep", "tiny", "--grid", "seca.kd=none,sgakt", "--slurm", "--max-running", "2",
                       "--slurm-opt", "begin=now+600").stdout
    store = Store.open(home)
    runs = store.runs()
    assert len(runs) == 2 and "as array job" in out
    assert len({r["slurm_job"].split("_")[0] for r in runs}) == 1
    for r in runs:
        seca_process(env, "cancel", r["run_id"])


def test_without_slurm_on_the_path_slurm_is_one_sentence_and_nothing_is_created(home, tmp_path):
    env = dict(engine_env(home), PATH=str(tmp_path))  # no sbatch, squeue... there
    done = subprocess.run([sys.executable, "-m", "seca_tui", "run", "tiny", "--slurm"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == ["error: --slurm needs Slurm's commands on the PATH, and sbatch, squeue, scontrol, scancel are not there."]
    assert not (home / "runs").exists() or not list((home / "runs").iterdir())


async def eventually(pilot, predicate, timeout: float = 60):
    """``predicate()`` once truthy, polled while the app runs on; None after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.25)
    return None


def test_the_new_run_screen_submits_to_slurm_and_the_browser_shows_the_job(home, cluster):
    from textual.widgets import Checkbox, Input, Select

    from seca_tui.app import SecaApp
    from seca_tui.screens.new_run import NewRunScreen

    async def scenario():
        app = SecaApp(home)
        async with app.run_test(size=(120, 40), notifications=True) as pilot:
            await pilot.press("n")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, NewRunScreen)
            screen.query_one("#preset", Select).value = "tiny"
            screen.query_one("#slurm", Checkbox).value = True
            screen.query_one("#slurm-options", Input).value = "time=5 begin=now+600"  # waits: cancelled below
            await pilot.pause()
            screen.action_launch()
            store = Store.open(home)
            run = await eventually(pilot, lambda: next(iter(store.runs()), None))
            assert run, screen.query_one("#verdict").render()
            await pilot.pause(0.5)
            assert run["slurm_job"] and run["status"] == "queued"
            assert any(f"Submitted tiny to Slurm as job {run['slurm_job']}." in t.render().plain
                       for t in app.screen.query("Toast"))
            assert json.loads((Path(run["run_dir"]) / "launch.json").read_text())["slurm"]["options"]["time"] == "5"
            # the browser's device cell: the job and, once Slurm has been asked, its state
            assert await eventually(pilot, lambda: settled(home, run["run_id"])["slurm_reason"] == "PENDING (BeginTime)")
            table = app.browser.table

            def first_row():
                rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
                return rows[0] if rows and f"job {run['slurm_job']} PENDING" in rows[0] else None

            assert await eventually(pilot, first_row), [str(c) for c in table.get_row_at(0)]
        return run

    run = asyncio.run(scenario())
    seca_process(engine_env(home), "cancel", run["run_id"])
