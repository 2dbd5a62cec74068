"""Everything the engine can check before training is checked before a run dir exists: the device,
that the model's weights can be had (without HF_HUB_OFFLINE set: no network here, nothing cached), the
dataset and the class order; every error is one sentence ending in exactly one full stop."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from seca_tui.cli import app, sentence
from seca_tui.store import Store
from tests.test_run_errors import failed_run

OPENAI = ["--set", "model.name=ViT-B-16", "--set", "model.pretrained=openai"]


def refused(home, *args: str) -> str:
    """Run ``seca-tui ARGS``: it must fail with one sentence on stderr and leave no run behind."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())
    assert Store.open(home).runs(include_archived=True) == []
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and line.endswith(".") and not line.endswith("..")
    return line


@pytest.mark.parametrize("args, fragment", [
    (["--set", "train.device=cuda"], "'train.device' is 'cuda', but no CUDA device is available here."),
    (OPENAI, "Weights 'openai' for ViT-B-16 are not in the local cache and cannot be downloaded here"),
    (["--set", "model.pretrained=/no/such/weights.pt"], "'/no/such/weights.pt' for model.pretrained does not exist."),
    (["--set", "scenario.class_order=[0,0,1,2,3,4]"], "class_order"),
])
def test_a_run_the_engine_would_refuse_is_refused_before_it_exists(home, monkeypatch, args, fragment):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the check must not rely on it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # no GPU visible, as on this machine
    assert fragment in refused(home, "run", "tiny", *args)


def test_data_check_says_whether_the_weights_can_be_had(home, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    result = CliRunner().invoke(app, ["data", "check", "tiny"])
    assert result.exit_code == 0 and "model seca-tiny: weights none can be had here" in result.stdout
    assert "tiny uses 6 of them in 3 tasks" in result.stdout  # 3 tasks × 2 classes of shapes-r's 100
    result = CliRunner().invoke(app, ["data", "check", "tiny", *OPENAI])
    assert result.exit_code == 1 and "are not in the local cache" in result.stderr
    assert "shapes-r" in result.stdout  # the dataset was checked first, and it is fine


def test_a_quoted_error_keeps_one_full_stop(home):
    run_id = failed_run(home)  # its error ends in a full stop
    result = CliRunner().invoke(app, ["attach", run_id])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].endswith("train.batch_size=32.")
    assert [sentence(t) for t in ("a", "a.", "a..", "did you mean 'b'?", "b.  ")] == ["a.", "a.", "a.", "did you mean 'b'?", "b."]


def test_a_checkpoint_path_relative_to_here_is_pinned(tmp_path, monkeypatch):
    """The engine runs in the run dir, where a path relative to the user's folder would not be found."""
    from seca_tui import launcher

    (tmp_path / "mine.pt").write_bytes(b"weights")
    monkeypatch.chdir(tmp_path)
    assert launcher.prepare("tiny", ["model.pretrained=mine.pt"]).model.pretrained == str(tmp_path / "mine.pt")
    assert launcher.prepare("demo").model.pretrained == "shapes-clip.pt"  # the package's own file stays a name
