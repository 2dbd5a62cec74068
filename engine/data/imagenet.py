"""ImageNet-R and ImageNet-A from their WordNet-id class folders, raw or pre-split.

Raw (as the tarballs unpack): ``<root>/<wnid>/*.jpg``, 200 folders. Neither dataset has an official
train/test split, so each class is split by a seeded manifest (``split_manifest.json``, kept with the
run). Pre-split: ``<root>/train/<wnid>/`` and ``<root>/test/<wnid>/`` (or ``val/``), used as they are.
Class index = position in the sorted wnids.

``names/imagenet_r.json`` and ``names/imagenet_a.json`` map each dataset's 200 wnids to readable
names. The wnid sets are those published by D. Hendrycks (``imagenet_r_wnids`` in hendrycks/imagenet-r
eval.py; the 1000→200 index map in hendrycks/natural-adv-examples eval.py, over the 1000 sorted
ImageNet wnids). The names are CLIP's ImageNet class names, ``IMAGENET_CLASSNAMES`` in open_clip's
``zero_shot_metadata.py``, whose order is that of the 1000 sorted wnids.
"""
from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

from engine.config import DataConfig
from engine.data.source import DataSource, class_images, file_split, layout_error, make_source, subfolders
from engine.paths import data_root

TITLES = {"imagenet-r": "ImageNet-R", "imagenet-a": "ImageNet-A"}
NAMES_DIR = Path(__file__).with_name("names")
MANIFEST = "split_manifest.json"


def wnid_names(dataset: str) -> dict[str, str]:
    """The dataset's 200 wnids (sorted) → readable class names."""
    return json.loads((NAMES_DIR / f"{dataset.replace('-', '_')}.json").read_text())


def _layout(root: Path, example_wnid: str) -> str:
    return (
        f"{root}/\n"
        f"  {example_wnid}/ *.jpg  (200 WordNet-id folders)\n"
        f"or {root}/train/<wnid>/, {root}/test/<wnid>/  (val/ may stand for test/)"
    )


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _check_classes(folder: Path, wnids: list[str], title: str, layout: str) -> None:
    """``folder`` must hold exactly the dataset's wnid folders."""
    found = set(subfolders(folder))
    if not found:
        raise layout_error(f"{title} was not found at {folder} (it holds no class folders).", layout)
    foreign = sorted(found - set(wnids))
    if foreign:
        raise layout_error(f"{folder} holds folders that are not {title} classes: {_few(foreign)}.", layout)
    missing = sorted(set(wnids) - found)
    if missing:
        raise layout_error(f"{folder} lacks {len(missing)} of the 200 {title} class folders: {_few(missing)}.", layout)


def held_out_count(n: int, fraction: float) -> int:
    """Test images of a class of ``n``: ``fraction`` of it rounded half up, leaving at least one for training."""
    return min(n - 1, max(1, math.floor(n * fraction + 0.5)))


def split_manifest(root: Path, items: list[Path], labels: list[int], seed: int, fraction: float) -> dict:
    """Per-class seeded split of the (sorted) files of a raw tree into train and test, as relative paths.

    Each class draws from its own generator, seeded by ``seed`` and its wnid, so adding images to one
    class leaves the split of every other class as it was.
    """
    manifest = {"seed": seed, "test_fraction": fraction, "train": [], "test": []}
    for _, group in itertools.groupby(zip(items, labels), key=lambda pair: pair[1]):
        files = [path.relative_to(root).as_posix() for path, _ in group]
        wnid = files[0].split("/")[0]
        rng = random.Random(f"{seed}/{wnid}")
        test = set(rng.sample(range(len(files)), held_out_count(len(files), fraction)))
        for i, name in enumerate(files):
            manifest["test" if i in test else "train"].append(name)
    return manifest


def _from_manifest(root: Path, names: list[str], wnids: list[str]) -> tuple[list[Path], list[int]]:
    index = {wnid: label for label, wnid in enumerate(wnids)}
    return [root / name for name in names], [index[name.split("/")[0]] for name in names]


def load(cfg: DataConfig) -> DataSource:
    title = TITLES[cfg.name]
    names = wnid_names(cfg.name)
    wnids = sorted(names)
    class_names = [names[w] for w in wnids]
    root = data_root(cfg.name, cfg.root)
    layout = _layout(root, wnids[0])
    if not root.is_dir():
        raise layout_error(f"{title} was not found at {root}.", layout)

    if (root / "train").is_dir():
        test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
        if test_dir is None:
            raise layout_error(f"{root} has a train/ folder but neither test/ nor val/.", layout)
        splits = []
        for folder in (root / "train", test_dir):
            _check_classes(folder, wnids, title, layout)
            splits.append(file_split(*class_images(folder, wnids, layout)))
        return make_source(cfg, class_names, *splits)

    _check_classes(root, wnids, title, layout)
    manifest = split_manifest(root, *class_images(root, wnids, layout), cfg.split_seed, cfg.test_fraction)
    train = file_split(*_from_manifest(root, manifest["train"], wnids))
    test = file_split(*_from_manifest(root, manifest["test"], wnids))
    return make_source(cfg, class_names, train, test, {MANIFEST: json.dumps(manifest, indent=1) + "\n"})


def check(cfg: DataConfig) -> int:
    """The 200 classes, once every wnid folder is there with images in it (a listing; no image is opened)."""
    return len(load(cfg).class_names)
