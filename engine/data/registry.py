"""Dataset name → the module that reads it. Imports each reader only when asked for.

Each reader module has ``load(cfg) -> DataSource`` and ``check(cfg) -> int``: the number of classes,
found as cheaply as the format allows (no image decoded, nothing rendered or downloaded), raising
the same DatasetError as ``load`` when the data is not where the config says.
"""
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


def class_count(cfg: DataConfig) -> int:
    """How many classes the dataset ``cfg.name`` has, cheaply; raises what :func:`load_source` would
    for a missing or misshapen root."""
    return importlib.import_module(READERS[cfg.name]).check(cfg)
