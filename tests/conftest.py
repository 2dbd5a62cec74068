"""Shared test setup: no hub look-ups (no internet here), and a private seca-tui home per test."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a failing hub look-up would take ~47 s
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh SECA_TUI_HOME; datasets rendered on demand land under it too."""
    path = tmp_path / "home"
    monkeypatch.setenv("SECA_TUI_HOME", str(path))
    return path


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """The 3-task fixture preset of tests/engine_runs.py (real image folder, tiny CLIP), per module."""
    from tests import engine_runs

    return engine_runs.fixture_preset(tmp_path_factory.mktemp("fixture"))
