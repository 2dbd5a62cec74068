"""What every dataset gives the engine: class names and two splits of (image, label) items.

A dataset module turns its on-disk format into a :class:`DataSource`; the engine never looks at
files itself. Labels are indices into ``class_names`` (the dataset's own sorted class list, the
indexing that ``presets/class_orders.yaml`` uses).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from PIL import Image

from engine.config import ConfigError


class DatasetError(ConfigError):
    """A dataset root is missing, incomplete or unreadable; the message shows the expected layout."""


class BadImageError(DatasetError):
    """One image cannot be decoded; names the file."""


@dataclass
class Split:
    """An ordered list of items with labels; ``load(item)`` decodes one item to an RGB PIL image."""

    items: Sequence  # file paths, array rows, render specs: whatever ``load`` understands
    labels: list[int]
    load: Callable[[object], Image.Image]
    describe: Callable[[object], str] = str  # how an item is named in error messages

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, i: int) -> Image.Image:
        try:
            return self.load(self.items[i]).convert("RGB")
        except (OSError, ValueError, SyntaxError) as e:
            raise BadImageError(f"Image {self.describe(self.items[i])} cannot be read: {e}.") from None


@dataclass
class DataSource:
    name: str
    class_names: list[str]
    train: Split
    test: Split
    # files to keep beside the run (e.g. the split manifest), name → text
    run_files: dict[str, str] = field(default_factory=dict)
