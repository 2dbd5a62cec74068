"""What every dataset gives the engine: class names and two splits of (image, label) items.

A dataset module turns its on-disk format into a :class:`DataSource`; the engine never looks at
files itself. Labels are indices into ``class_names`` (the dataset's own sorted class list, the
indexing that ``presets/class_orders.yaml`` uses).
"""
from __future__ import annotations

import dataclasses
import io
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from engine.config import ConfigError, DataConfig


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


# ----------------------------------------------------------------------------------------- helpers
# Shared by the readers of on-disk formats, so every dataset lists, caps and complains the same way.

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})


def layout_error(problem: str, layout: str) -> DatasetError:
    """``problem`` (one sentence) followed by the expected folder layout as an indented tree."""
    return DatasetError(f"{problem} Expected layout:\n{textwrap.indent(layout, '  ')}")


def _entries(folder: Path) -> list[os.DirEntry]:
    # scandir knows each entry's type without a stat per file: 30,000 stats are slow on network filesystems
    return [e for e in os.scandir(folder) if not e.name.startswith(".")]  # .DS_Store, ._a.jpg, .ipynb_checkpoints


def subfolders(folder: Path) -> list[str]:
    """Names of the visible subfolders of ``folder``, sorted."""
    return sorted(e.name for e in _entries(folder) if e.is_dir())


def list_images(folder: Path) -> list[Path]:
    """The visible image files directly inside ``folder`` (any case of the suffix), sorted by name."""
    return sorted(
        folder / e.name for e in _entries(folder) if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES
    )


def class_images(split_dir: Path, classes: Sequence[str], layout: str) -> tuple[list[Path], list[int]]:
    """Images of ``split_dir/<class>/`` for each class, labelled by the class's index in ``classes``."""
    items: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        images = list_images(split_dir / name)
        if not images:
            raise layout_error(f"Class folder {split_dir / name} holds no images.", layout)
        items += images
        labels += [label] * len(images)
    return items, labels


def open_image(path: Path) -> Image.Image:
    """Read the file now and decode it lazily, so no file handle outlives the call."""
    return Image.open(io.BytesIO(Path(path).read_bytes()))


def file_split(items: list[Path], labels: list[int]) -> Split:
    """A split of image files; errors name the file's path."""
    return Split(items=items, labels=labels, load=open_image)


def cap_per_class(split: Split, n: int) -> Split:
    """Keep the first ``n`` items of each class, in order (``n = 0`` keeps all)."""
    if not n:
        return split
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(split.labels):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= n:
            keep.append(i)
    return dataclasses.replace(split, items=[split.items[i] for i in keep], labels=[split.labels[i] for i in keep])


def make_source(
    cfg: DataConfig, class_names: list[str], train: Split, test: Split, run_files: dict[str, str] | None = None
) -> DataSource:
    """The :class:`DataSource` of a reader, with the config's per-class caps applied."""
    return DataSource(
        name=cfg.name,
        class_names=class_names,
        train=cap_per_class(train, cfg.train_per_class),
        test=cap_per_class(test, cfg.test_per_class),
        run_files=run_files or {},
    )


def describe(source: DataSource) -> dict:
    """What ``seca-tui data check`` prints: classes and per-split counts (no images are decoded)."""
    def counts(split: Split) -> dict:
        per_class = [0] * len(source.class_names)
        for label in split.labels:
            per_class[label] += 1
        return {"images": len(split), "per_class_min": min(per_class, default=0),
                "per_class_max": max(per_class, default=0)}

    return {
        "dataset": source.name,
        "classes": len(source.class_names),
        "first_classes": source.class_names[:5],
        "train": counts(source.train),
        "test": counts(source.test),
        "run_files": sorted(source.run_files),
    }
