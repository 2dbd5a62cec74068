"""Sweeps and grouped results: `seca-tui sweep` makes the product of its grids, `seca-tui results`
groups runs into mean ± std (ddof=1) over trials, in every format, parsed back here."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from seca_tui import results
from seca_tui.store import FINAL, Store
from tests.commands import cli, seca_process
from tests.engine_runs import engine_env, events, wait_for
from tests.runlog import CONFIG, run_events, write_run
from tests.test_cli import one_sentence_error


def hand_config(method: str, lr: float, trial: int) -> dict:
    return {**CONFIG, "method": method, "train": {"epochs": 2, "lr": lr}, "scenario": {"n_tasks": 2, "trial": trial}}


@pytest.fixture
def trials(home) -> Store:
    """Three trials of seca (lr 0.001) and two of hpeft (lr 0.01), finished, written by hand; a third
    hpeft trial that has not finished; all with different numbers."""
    store = Store.open(home)
    matrices = [[[80.0], [61.0, 90.0]], [[82.0], [57.5, 88.0]], [[79.0], [66.25, 91.0]],
                [[70.0], [65.0, 75.0]], [[72.5], [60.0, 77.0]], [[71.0], [64.0, 70.0]]]
    plan = [("seca", 0.001, 0), ("seca", 0.001, 1), ("seca", 0.001, 2), ("hpeft", 0.01, 0), ("hpeft", 0.01, 1),
            ("hpeft", 0.01, 2)]
    for i, ((method, lr, trial), matrix) in enumerate(zip(plan, matrices)):
        write_run(store.runs_dir, f"20261201-10000{i}-run{i}",
                  run_events(matrix, [10, 30], config=hand_config(method, lr, trial), finish=i != 5))
    store.ingest_all()
    return store


def finished_metrics(run_dirs: list[Path]) -> dict[str, np.ndarray]:
    """Each metric of the runs' `run_finished` events, read from events.jsonl, not from the store."""
    ends = [next(e for e in events(d) if e["type"] == "run_finished") for d in run_dirs]
    return {m: np.array([e[m] for e in ends], dtype=float) for m in results.METRICS}


# ----------------------------------------------------------------------------------------- parsers

NUMBER = r"(-?\d+\.\d+)"


def mean_std_cells(text: str, pm: str) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in re.findall(NUMBER + r"\s*" + re.escape(pm) + r"\s*" + NUMBER, text)]


def parse_markdown(text: str) -> list[dict[str, str]]:
    lines = text.strip().splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}
    return [dict(zip(head, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]


def parse_latex(text: str) -> list[dict[str, str]]:
    lines = text.strip().splitlines()
    assert lines[0].startswith(r"\begin{tabular}") and lines[-1] == r"\end{tabular}"
    body = [l.removesuffix(r"\\").strip() for l in lines if l.endswith(r"\\")]
    head = [c.strip() for c in body[0].split("&")]
    return [dict(zip(head, (c.strip() for c in line.split("&")))) for line in body[1:]]


def parse_text(text: str) -> list[dict[str, str]]:
    """The terminal table: columns at least two spaces apart (a cell has single spaces at most)."""
    head, *lines = [re.split(r"\s{2,}", l.strip()) for l in text.strip().splitlines()]
    return [dict(zip(head, line)) for line in lines]


def split_pm(cell: str, pm: str) -> tuple[float, float]:
    ((mean, std),) = mean_std_cells(cell, pm)
    return mean, std


# ----------------------------------------------------------------------------------------- results

def test_groups_by_the_keys_that_differ_and_averages_only_finished_runs(trials):
    runs = [trials.run(r["run_id"]) for r in reversed(trials.runs())]
    assert results.differing_keys(runs) == ["method", "train.lr"]  # not name, not scenario.trial
    seca, hpeft = results.group_runs(runs)
    assert (seca.method, seca.n, len(seca.unfinished)) == ("seca", 3, 0)
    assert (hpeft.method, hpeft.n, len(hpeft.unfinished)) == ("hpeft", 2, 1)
    for group in (seca, hpeft):
        done = [r for r in runs if r["run_id"] in group.finished]
        for m in results.METRICS:
            values = np.array([r[m] for r in done])
            assert group.stats[m].mean == pytest.approx(values.mean())
            assert group.stats[m].std == pytest.approx(values.std(ddof=1))
            assert group.stats[m].n == len(done)


def test_a_variant_of_engine_config_is_named_by_its_label():
    from engine import config

    def run(*overrides: str) -> dict:
        cfg = config.to_dict(config.load("tiny", list(overrides)))
        return {"run_id": "x", "config": cfg, "method": cfg["method"]}
    assert results.method_label(run("method=seca")) == "SECA"
    assert results.method_label(run("method=seca", "seca.kd=none")) == "SECA w/o SG-AKT"
    assert results.method_label(run("method=seca++")) == "SECA++"
    assert results.method_label(run("method=zeroshot")) == "zero-shot CLIP"
    assert results.method_label(run("method=seca", "seca.kd=clip")) == "seca"  # no variant: the method


def test_every_format_parses_back_to_the_same_numbers(trials):
    expected = json.loads(cli("results", "--format", "json").stdout)
    assert [(g["method"], g["n"], g["unfinished"]) for g in expected] == [("seca", 3, 0), ("hpeft", 2, 1)]
    headers = [results.HEADERS[m] for m in results.METRICS]

    def check(rows: list[dict[str, str]], pm: str) -> None:
        assert [r["method"] for r in rows] == ["seca", "hpeft"]
        for row, group in zip(rows, expected):
            assert int(row["n"]) == group["n"] and int(row["unfinished"]) == group["unfinished"]
            for header, m in zip(headers, results.METRICS):
                mean, std = split_pm(row[header], pm)
                assert mean == pytest.approx(group[f"{m}_mean"], abs=0.005)
                assert std == pytest.approx(group[f"{m}_std"], abs=0.005)

    check(parse_markdown(cli("results", "--format", "markdown").stdout), "±")
    check(parse_latex(cli("results", "--format", "latex").stdout), r"$\pm$")
    check(parse_text(cli("results").stdout), "±")
    rows = list(csv.DictReader(io.StringIO(cli("results", "--format", "csv").stdout)))
    assert len(rows) == 2
    for row, group in zip(rows, expected):
        for m in results.METRICS:
            assert float(row[f"{m}_mean"]) == group[f"{m}_mean"] and float(row[f"{m}_std"]) == group[f"{m}_std"]
        assert row["runs"].split() == group["runs"]


def test_group_by_and_metrics_options(trials):
    out = json.loads(cli("results", "--group-by", "scenario.trial", "--metrics", "last", "--format", "json").stdout)
    assert [g["scenario.trial"] for g in out] == [0, 1, 2]
    assert [g["n"] for g in out] == [2, 2, 1] and out[2]["unfinished"] == 1
    assert set(out[0]) == {"method", "scenario.trial", "n", "last_mean", "last_std", "last_n", "unfinished", "runs"}
    assert out[0]["method"] == "seca / hpeft"
    assert out[2]["last_std"] is None  # one value has no sample std


@pytest.mark.parametrize("args, fragments", [
    (["results", "--format", "html"], ["--format must be one of"]),
    (["results", "--metrics", "last,top5"], ["Unknown metric 'top5'"]),
    (["results", "--group-by", "train.lrr"], ["config key 'train.lrr'"]),
    (["results", "--tag", "nope"], ["No runs match tag 'nope'"]),
    (["results", "--sweep", "nope"], ["No runs match tag 'sweep:nope'"]),
])
def test_results_mistakes_are_one_sentence(trials, args, fragments):
    one_sentence_error(cli(*args), *fragments)


# ----------------------------------------------------------------------------------------- sweeps

def test_sweep_dry_run_lists_the_product_and_creates_nothing(home):
    result = cli("sweep", "tiny", "--grid", "seca.kd=none,sgakt", "--grid", "train.milestones=[1],[2],[1,2]",
                 "--trials", "2", "--name", "abl", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = [l.split() for l in lines[1:-1]]
    assert [r[1:] for r in rows] == [[kd, ms, t] for kd in ("none", "sgakt") for ms in ("[1]", "[2]", "[1,2]")
                                     for t in ("0", "1")]
    assert rows[0][0] == "abl-kd=none-milestones=[1]-trial0" and rows[-1][0] == "abl-kd=sgakt-milestones=[1,2]-trial1"
    assert lines[-1].startswith("12 runs in sweep abl")
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


def test_a_sweep_file_says_the_same(home, tmp_path):
    path = tmp_path / "abl.yaml"
    path.write_text("preset: tiny\nname: abl\ngrid: {seca.kd: [none, sgakt]}\nset: {train.epochs: 1}\ntrials: 2\n")
    result = cli("sweep", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert [l.split()[0] for l in result.stdout.splitlines()[1:-1]] == [
        "abl-kd=none-trial0", "abl-kd=none-trial1", "abl-kd=sgakt-trial0", "abl-kd=sgakt-trial1"]
    path.write_text("preset: tiny\ngrid: {seca.kd: [none]}\ntrails: 2\n")
    one_sentence_error(cli("sweep", str(path)), "unknown key 'trails'")
    path.write_text("grid: {seca.kd: [none]}\n")
    one_sentence_error(cli("sweep", str(path)), "needs 'preset: NAME'")
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


@pytest.mark.parametrize("args, fragments", [
    (["--grid", "seca.kd=none,bogus"], ["'seca.kd'", "bogus"]),
    (["--grid", "seca.kdd=none"], ["Unknown config key 'seca.kdd'", "seca.kd"]),
    (["--grid", "scenario.n_tasks=3,7"], ["scenario.n_tasks", "7"]),
    (["--grid", "train.lr"], ["--grid takes KEY=V1,V2"]),
    (["--grid", "train.lr=0.1,0.1"], ["twice"]),
    (["--grid", "train.lr=0.1", "--grid", "train.lr=0.2"], ["'train.lr' twice"]),
    (["--grid", "train.lr=0.1", "--trials", "9"], ["--trials 9"]),
    ([], ["at least one --grid"]),
])
def test_one_bad_value_stops_the_whole_sweep_and_creates_nothing(home, args, fragments):
    one_sentence_error(cli("sweep", "tiny", *args), *fragments)
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())


@pytest.mark.slow
def test_a_real_sweep_through_the_queue_groups_into_mean_and_std(home):
    """2 values × 2 trials of the tiny preset through the run queue (two fake devices, real engines):
    `results --sweep` has 2 rows with n = 2 and numpy's mean and sample std of each metric of the
    runs' run_finished events."""
    env = engine_env(home) | {"SECA_TUI_GPUS": "fake0,fake1", "OMP_NUM_THREADS": "1"}

    def seca(*args: str) -> str:
        return seca_process(env, *args, timeout=300).stdout

    out = seca("sweep", "tiny", "--grid", "seca.kd=none,sgakt", "--trials", "2", "--set", "train.epochs=1",
               "--name", "kd", "--queue")
    run_ids = out.splitlines()[-4:]
    store = Store.open(home)
    assert all("sweep:kd" in store.run(r)["tags"] for r in run_ids)
    assert json.loads((home / "runs" / run_ids[2] / "launch.json").read_text())["sweep"] == {
        "name": "kd", "grid": {"seca.kd": "sgakt"}}

    def all_done() -> bool:
        store.ingest_all()
        return all(store.run(r)["status"] in FINAL for r in run_ids)
    wait_for(all_done, timeout=600, interval=0.5)
    assert [store.run(r)["status"] for r in run_ids] == ["finished"] * 4

    rows = json.loads(seca("results", "--sweep", "kd", "--format", "json"))
    assert [(r["method"], r["seca.kd"], r["n"]) for r in rows] == [("SECA w/o SG-AKT", "none", 2), ("SECA", "sgakt", 2)]
    for row, ids in zip(rows, (run_ids[:2], run_ids[2:])):
        assert row["runs"] == ids
        expected = finished_metrics([home / "runs" / r for r in ids])
        for m, values in expected.items():
            assert row[f"{m}_mean"] == pytest.approx(values.mean(), abs=1e-9)
            assert row[f"{m}_std"] == pytest.approx(values.std(ddof=1), abs=1e-9)
    one_sentence_error(cli("sweep", "tiny", "--grid", "seca.kd=none", "--name", "kd"), "sweep named 'kd' exists")


@pytest.mark.parametrize("command", ["sweep", "results", "import", "plot"])
def test_the_paper_commands_have_help(command, home):
    result = cli(command, "--help")
    assert result.exit_code == 0 and "Usage" in result.stdout
