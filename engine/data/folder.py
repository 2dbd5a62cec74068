"""Any image-classification data laid out as ``<root>/train/<class>/*`` and ``<root>/test/<class>/*``.

Classes are the folder names, sorted; an underscore in a folder name reads as a space in the class
name that CLIP's prompts see ("golden_retriever" → "golden retriever").
"""
from __future__ import annotations

from pathlib import Path

from engine.config import DataConfig
from engine.data.source import DataSource, class_images, file_split, layout_error, make_source, subfolders
from engine.paths import data_root

SPLITS = ("train", "test")


def _layout(root: Path) -> str:
    return (
        f"{root}/\n"
        "  train/<class>/ *.jpg, *.png, ...\n"
        "  test/<class>/ *.jpg, *.png, ...  (the same class folders as train/)"
    )


def load(cfg: DataConfig) -> DataSource:
    root = data_root(cfg.name, cfg.root)
    layout = _layout(root)
    if not root.is_dir():
        raise layout_error(f"The image folder dataset was not found at {root}.", layout)
    missing = [f"{s}/" for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise layout_error(f"{root} has no {' or '.join(missing)} folder.", layout)
    train_classes, test_classes = (subfolders(root / s) for s in SPLITS)
    if not train_classes:
        raise layout_error(f"{root / 'train'} holds no class folders.", layout)
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise layout_error(
            f"train/ and test/ of {root} hold different class folders "
            f"(only in train/: {', '.join(only_train) or 'none'}; only in test/: {', '.join(only_test) or 'none'}).",
            layout,
        )
    class_names = [c.replace("_", " ") for c in train_classes]
    train, test = (file_split(*class_images(root / s, train_classes, layout)) for s in SPLITS)
    return make_source(cfg, class_names, train, test)


def check(cfg: DataConfig) -> int:
    """The class folders, from a listing of the files (an empty class folder is caught too); no image
    is opened."""
    return len(load(cfg).class_names)
