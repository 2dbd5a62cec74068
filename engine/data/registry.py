"""Dataset name → the module that reads it. Imports each reader only when asked for."""
from __future__ import annotations

import importlib

from engine.config import DataConfig
from engine.data.source import DataSource

READERS = {
    "shapes-r": "engine.data.shapes",
    "cifar100": "engine.data.cifar100",
    "imagenet-r": "engine.data.imagenet",
    "imagenet-a": "engine.data.imagenet",
    "folder": "engine.data.folder",
    "synthetic": "engine.data.synthetic",
}


def load_source(cfg: DataConfig) -> DataSource:
    """Read the dataset ``cfg.name`` from its root; raises DatasetError with the expected layout."""
    return importlib.import_module(READERS[cfg.name]).load(cfg)
