"""Every method and every SECA ablation switch runs the real engine to the end on a tiny CPU setup.

The four methods go through ``python -m engine run`` (started together: the import dominates);
the ``kd`` and ``classifier`` ablations run in this process through ``engine.train.run``. Each run:
6 fixture classes in 3 tasks, 4 training images per class, 1 epoch, the random seca-tiny CLIP, a
pool of 2 so that pruning happens. SECA's reports are checked against the task plan.
"""
import signal

import pytest
import torch

from engine.config import load
from engine.train import run as run_engine
from tests import engine_runs

pytestmark = pytest.mark.slow

METHODS = ["zeroshot", "hpeft", "seca", "seca++"]
POOL_SIZE = engine_runs.POOL_SIZE


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    return engine_runs.fixture_preset(tmp_path_factory.mktemp("fixture"), train_per_class=4, test_per_class=2, epochs=1)


@pytest.fixture(scope="module")
def method_runs(preset, tmp_path_factory):
    """The four methods as real subprocesses, all started at once: method → (exit code, events)."""
    runs = tmp_path_factory.mktemp("runs")
    procs = {m: engine_runs.start(preset, runs / m, f"method={m}") for m in METHODS}
    codes = {m: p.wait(300) for m, p in procs.items()}
    return {m: (codes[m], engine_runs.events(runs / m), runs / m) for m in METHODS}


def expected_losses(kd: str, classifier: str, replay: str, task: int) -> set[str]:
    """The loss names a step of ``task`` (0-based) reports under these switches (seca-method.md §5)."""
    names = {"ce_text"}
    if classifier == "sevpr_hybrid":
        names |= {"ce_visual", "reg"} if task else {"ce_visual"}
    if classifier == "linear":
        names.add("ce_linear")
    if task and kd != "none":
        names |= {"kd", "agg"} if kd == "sgakt" else {"kd"}
    if task and replay == "gaussian":
        names.add("gs")
    return names


def assert_finished(code, evs, run_dir):
    log = (run_dir / "engine.log").read_text()[-3000:] if (run_dir / "engine.log").exists() else ""
    assert code == 0, log
    kinds = [e["type"] for e in evs]
    assert "run_failed" not in kinds, next(e for e in evs if e["type"] == "run_failed")
    assert [k for k in kinds if k != "heartbeat"][:3] == ["phase", "phase", "run_started"]  # data, model
    assert kinds[-1] == "run_finished"
    assert [e["after_task"] for e in evs if e["type"] == "eval"] == [0, 1, 2]


def assert_losses(evs, kd, classifier, replay):
    steps = [e for e in evs if e["type"] == "step"]
    assert {e["task"] for e in steps} == {0, 1, 2}
    for e in steps:
        assert set(e["losses"]) == expected_losses(kd, classifier, replay, e["task"]) | {"total"}, e


def check_reports(evs, kd: str, sevpr: bool):
    """affinity / relevance / pool agree with the plan in run_started and with each other."""
    started = engine_runs.started(evs)
    names, tasks = started["class_names"], started["tasks"]
    by_task = {}
    for e in evs:
        if e["type"] in ("affinity", "relevance", "pool"):
            by_task.setdefault(e["task"], []).append(e)
    kept, pruned_any = [], False
    for t, classes in enumerate(tasks):
        reports = {e["type"]: e for e in by_task.pop(t, [])}
        expected = ({"affinity"} if sevpr else set()) | ({"pool"} if kd in ("sgakt", "last", "mean") else set())
        if t and kd == "sgakt":
            expected.add("relevance")
        assert set(reports) == expected, (t, sorted(reports))
        if sevpr:  # K × K over the seen classes, each row a distribution
            aff = reports["affinity"]
            seen = classes[-1] + 1
            assert aff["labels"] == names[:seen]
            values = torch.tensor(aff["values"])
            assert values.shape == (seen, seen) and (values >= 0).all()
            torch.testing.assert_close(values.sum(1), torch.ones(seen))
        if "relevance" in reports:  # current classes × the pool members present during the task
            rel = reports["relevance"]
            assert rel["rows"] == [names[c] for c in classes] and rel["cols"] == kept
            values = torch.tensor(rel["values"])
            assert values.shape == (len(classes), len(kept)) and (values >= 0).all()
            torch.testing.assert_close(values.sum(1), torch.ones(len(classes)))
            assert len(rel["utility"]) == len(kept)
            assert sum(rel["utility"]) == pytest.approx(1.0)
        if "pool" in reports:
            pool = reports["pool"]
            if len(kept) < POOL_SIZE:
                assert pool["pruned"] is None
            else:  # full: the lowest-utility member goes (prune: min), the newest snapshot comes in
                assert pool["pruned"] in kept
                if "relevance" in reports:
                    utility = reports["relevance"]["utility"]
                    assert pool["pruned"] == kept[utility.index(min(utility))]
                pruned_any = True
            kept = [k for k in kept if k != pool["pruned"]] + [f"task {t}"]
            assert pool["kept"] == kept and len(kept) <= POOL_SIZE
    assert not by_task  # no report names a task outside the plan
    assert pruned_any == (kd in ("sgakt", "last", "mean"))


# ------------------------------------------------------------------------------ the four methods


@pytest.mark.parametrize("method", METHODS)
def test_method_runs_to_the_end(method_runs, method):
    code, evs, run_dir = method_runs[method]
    assert_finished(code, evs, run_dir)
    cfg = engine_runs.started(evs)["config"]["seca"]
    if method == "zeroshot":
        assert not [e for e in evs if e["type"] in ("step", "affinity", "relevance", "pool")]
    else:
        assert_losses(evs, cfg["kd"], cfg["classifier"], cfg["replay"])


@pytest.mark.parametrize("method", ["seca", "seca++"])
def test_seca_reports_match_the_task_plan(method_runs, method):
    _, evs, _ = method_runs[method]
    check_reports(evs, "sgakt", sevpr=True)


def test_hpeft_reports_nothing_of_seca(method_runs):
    _, evs, _ = method_runs["hpeft"]
    assert not [e for e in evs if e["type"] in ("affinity", "relevance", "pool")]


# ------------------------------------------------------------------------------ ablations in process


@pytest.fixture
def in_process():
    """engine.train.run sets threads, determinism and signal handlers for its process: restore them."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    for s, h in handlers.items():
        signal.signal(s, h)


@pytest.mark.parametrize("switch, value", [("kd", v) for v in ("none", "clip", "last", "mean", "sgakt")]
                         + [("classifier", v) for v in ("text", "centroid_frozen", "centroid_adapted", "linear")])
def test_ablation_runs_to_the_end(preset, tmp_path, in_process, switch, value):
    cfg = load(preset, [f"seca.{switch}={value}"])
    code = run_engine(cfg, tmp_path / "run")
    evs = engine_runs.events(tmp_path / "run")
    assert_finished(code, evs, tmp_path / "run")
    s = cfg.seca
    assert_losses(evs, s.kd, s.classifier, s.replay)
    check_reports(evs, s.kd, sevpr=s.classifier == "sevpr_hybrid")
