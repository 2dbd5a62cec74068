"""Per-task checkpoints, written atomically and verified on load.

``checkpoints/task-NNN.pt`` plus ``task-NNN.pt.sha256``: torch.save to a temp file in the same folder,
fsync, rename over the final name, fsync the folder. A crash or a full disk leaves the previous good
checkpoint untouched; a file whose checksum does not match is refused with the reason.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from engine.config import ConfigError


class CheckpointError(ConfigError):
    """A checkpoint is missing, corrupt or belongs to another run; names the file and what is wrong."""


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def path_for(run_dir: Path, task: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"task-{task:03d}.pt"


def save(run_dir: Path, task: int, state: dict) -> tuple[Path, str]:
    """Write the checkpoint after ``task``; returns (path, sha256)."""
    path = path_for(run_dir, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    _atomic_write(path, data)
    _atomic_write(path.with_name(path.name + ".sha256"), (digest + "\n").encode())
    return path, digest


def load(path: Path) -> dict:
    """Read and verify one checkpoint."""
    try:
        data = path.read_bytes()
        expected = path.with_name(path.name + ".sha256").read_text().strip()
    except OSError as e:
        raise CheckpointError(f"Checkpoint {path} cannot be read: {e.strerror}.") from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(f"Checkpoint {path} is corrupt: its sha256 does not match {path.name}.sha256.")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # hashes right but does not unpickle: written by something else
        raise CheckpointError(f"Checkpoint {path} cannot be unpickled: {e}.") from None


def available(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, newest first."""
    return sorted((Path(run_dir) / "checkpoints").glob("task-*.pt"), reverse=True)
