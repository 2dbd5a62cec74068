"""`seca-tui plot`: each kind writes a PNG and a PDF that open; what is drawn is checked on the
matplotlib figure (lines, bands, bars, cells), not on pixels."""
from __future__ import annotations

import pytest
from matplotlib.collections import PolyCollection
from PIL import Image
from typer.testing import CliRunner

from seca_tui import plots
from seca_tui.cli import app
from seca_tui.store import Store
from tests.runlog import CONFIG, run_events, write_run
from tests.test_cli import one_sentence_error

MATRICES = {  # two methods × two trials, 3 tasks, all numbers distinct
    ("seca", 0): [[80.0], [61.0, 90.0], [55.0, 70.0, 88.0]],
    ("seca", 1): [[82.0], [57.5, 88.0], [50.0, 72.5, 91.0]],
    ("hpeft", 0): [[70.0], [65.0, 75.0], [60.0, 66.0, 79.0]],
    ("hpeft", 1): [[72.5], [60.0, 77.0], [58.0, 69.0, 81.5]],
}
LABELS = ["c0", "c1", "c2", "c3", "c4", "c5"]


@pytest.fixture
def runs(home) -> Store:
    store = Store.open(home)
    for i, ((method, trial), matrix) in enumerate(MATRICES.items()):
        config = {**CONFIG, "method": method, "scenario": {"n_tasks": 3, "trial": trial}}
        events = run_events(matrix, [10, 10, 10], config=config)
        events.insert(-1, ("affinity", {"task": 2, "labels": LABELS,
                                        "values": [[float(r == c) + 0.1 * i for c in range(6)] for r in range(6)]}))
        write_run(store.runs_dir, f"20261201-10000{i}-{method}{trial}", events)
    store.ingest_all()
    return store


def figure_of(store: Store, kind: str, run_ids: list[str] | None = None):
    chosen = [store.run(r["run_id"]) for r in reversed(store.runs()) if run_ids is None or r["run_id"] in run_ids]
    return plots.figure(kind, chosen, {r["run_id"]: plots.load(store, r["run_id"]) for r in chosen})


@pytest.mark.parametrize("kind", plots.KINDS)
def test_each_kind_writes_a_png_and_a_pdf_that_open(runs, tmp_path, kind):
    two = ["20261201-100000-seca0", "20261201-100002-hpeft0"]
    for suffix in (".png", ".pdf"):
        out = tmp_path / f"{kind}{suffix}"
        result = CliRunner().invoke(app, ["plot", *two, "--kind", kind, "--out", str(out)])
        assert result.exit_code == 0, result.output
        if suffix == ".png":
            with Image.open(out) as image:
                image.verify()
                assert image.format == "PNG"
        else:
            assert out.read_bytes().startswith(b"%PDF-")


def test_a_figure_appears_whole_or_not_at_all(runs, tmp_path, monkeypatch):
    """Saved beside its name and renamed: no file under the name while it is written, none after a save
    that fails half-way, and no partial file left in either case."""
    fig = figure_of(runs, "curves")
    folder = tmp_path / "figures"
    folder.mkdir()
    out = folder / "curves.pdf"
    real_savefig = type(fig).savefig

    def savefig(self, target, **kwargs):
        assert not out.exists()  # the name appears only once the file is whole
        real_savefig(self, target, **kwargs)
        if fail:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(fig), "savefig", savefig)
    fail = True
    with pytest.raises(OSError):
        plots.save(fig, out)
    assert list(folder.iterdir()) == []
    fail = False
    assert plots.save(fig, out) == out
    assert out.read_bytes().startswith(b"%PDF-") and list(folder.iterdir()) == [out]


def test_curves_one_mean_and_band_per_group(runs):
    fig = figure_of(runs, "curves")
    (ax,) = fig.axes
    assert len(ax.lines) == 2  # seca and hpeft, each the mean of its 2 trials
    assert len([c for c in ax.collections if isinstance(c, PolyCollection)]) == 2  # their ± std bands
    seca = ax.lines[0]
    assert list(seca.get_xdata()) == [1, 2, 3]  # tasks for people: 1..T
    expected = [sum(sum(m[t]) / len(m[t]) for m in (MATRICES[("seca", 0)], MATRICES[("seca", 1)])) / 2 for t in range(3)]
    assert list(seca.get_ydata()) == pytest.approx(expected)
    assert ax.get_ylabel().endswith("(%)") and ax.get_xlabel() == "task"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["seca (n=2)", "hpeft (n=2)"]


def test_matrix_has_a_cell_per_evaluation(runs):
    fig = figure_of(runs, "matrix", ["20261201-100000-seca0", "20261201-100003-hpeft1"])
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2
    for ax in panels:
        assert ax.images[0].get_array().shape == (3, 3)
        assert len(ax.texts) == 6  # the lower triangle, with its values
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]
    assert "55.0" in [t.get_text() for t in panels[0].texts]


def test_forgetting_bars_per_group_and_old_task(runs):
    fig = figure_of(runs, "forgetting")
    (ax,) = fig.axes
    assert len(ax.patches) == 2 * 2  # two groups × tasks 1 and 2 (the last task has nothing to forget)
    seca_task1 = ax.patches[0].get_height()
    assert seca_task1 == pytest.approx(((80.0 - 55.0) + (82.0 - 50.0)) / 2)


def test_relevance_affinity_losses(runs):
    one = ["20261201-100000-seca0"]
    fig = figure_of(runs, "relevance", one)
    heat = [ax for ax in fig.axes if ax.images and ax.get_ylabel() == "class"]
    assert heat[0].images[0].get_array().shape == (2, 3)  # last task's 2 classes × 3 pool entries
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "utility"]
    assert len(bars[0].patches) == 3
    assert [t.get_text() for t in heat[0].get_xticklabels()] == ["T1", "T2", "T3"]

    fig = figure_of(runs, "affinity", one)
    assert [ax.images[0].get_array().shape for ax in fig.axes if ax.images] == [(6, 6)]

    fig = figure_of(runs, "losses", one + ["20261201-100002-hpeft0"])
    (ax,) = fig.axes
    assert len(ax.lines) == 2 * 2  # 2 runs × losses ce and kd
    assert len(ax.lines[0].get_xdata()) == 9  # 3 steps per task


@pytest.mark.parametrize("args, fragments", [
    (["--kind", "pie", "--out", "x.png"], ["--kind must be one of"]),
    (["--kind", "curves", "--out", "x.jpg"], ["--out must end in", "x.jpg"]),
    (["--kind", "curves", "--out", "/no/such/dir/x.png"], ["/no/such/dir", "does not exist"]),
    (["--kind", "matrix", "--out", "x.png", "--tag", "none"], ["No runs match tag 'none'"]),
])
def test_plot_mistakes_are_one_sentence(runs, tmp_path, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    one_sentence_error(CliRunner().invoke(app, ["plot", *args]), *fragments)
    assert not list(tmp_path.glob("x.*"))


def test_matplotlib_is_not_imported_by_the_cli():
    import subprocess
    import sys

    code = "import sys, seca_tui.cli; assert 'matplotlib' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
