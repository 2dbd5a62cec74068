"""The seca-tui CLI as tests call it: in-process through Typer's runner, or as a real process."""
import subprocess
import sys

from typer.testing import CliRunner

from seca_tui.cli import app
from tests.engine_runs import REPO


def cli(*args: str):
    """``seca-tui ARGS`` in this process; the result, whatever the exit code."""
    return CliRunner().invoke(app, list(args))


def ok(*args: str) -> str:
    """``seca-tui ARGS`` in this process; must succeed. Its stdout."""
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def seca_process(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``seca-tui ARGS`` as a real process with ``env``; must succeed."""
    done = subprocess.run([sys.executable, "-m", "seca_tui", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr + done.stdout
    return done
