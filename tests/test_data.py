"""The dataset readers, driven through the registry exactly as a run reads a user's data."""
from __future__ import annotations

import json
import os
import pathlib
import pickle
import re
import shutil
import sys
import types
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from tests.datasets import CIFAR100_NAMES, make_cifar100, make_image_folder, make_wnid_tree
from engine.config import DataConfig
from engine.data.imagenet import wnid_names
from engine.data.registry import READERS, class_count, load_source
from engine.data.source import BadImageError, DatasetError, describe


def load(name: str, root, **kw):
    return load_source(DataConfig(name=name, root=str(root), **kw))


def per_class(split) -> Counter:
    return Counter(split.labels)


# ----------------------------------------------------------------------------------------- CIFAR-100


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    return make_cifar100(tmp_path_factory.mktemp("cifar"), train_per_class=3, test_per_class=2)


def test_cifar100_reads_the_official_pickles(cifar_root):
    src = load("cifar100", cifar_root)
    assert src.class_names == [n.replace("_", " ") for n in CIFAR100_NAMES]
    assert src.class_names[1] == "aquarium fish"
    assert (len(src.train), len(src.test)) == (300, 200)
    assert set(per_class(src.train).values()) == {3} and set(per_class(src.test).values()) == {2}
    raw = pickle.loads((cifar_root / "cifar-100-python" / "train").read_bytes(), encoding="bytes")
    assert src.train.labels == raw[b"fine_labels"]
    img = src.train.image(7)
    assert (img.mode, img.size) == ("RGB", (32, 32))
    # a row is three 32 × 32 planes (red, green, blue), each row-major
    x, y = 5, 9
    planes = raw[b"data"][7].reshape(3, 32, 32)
    assert img.getpixel((x, y)) == tuple(int(planes[c, y, x]) for c in range(3))


def test_cifar100_root_may_be_the_pickle_folder_itself(cifar_root):
    src = load("cifar100", cifar_root / "cifar-100-python")
    assert (len(src.class_names), len(src.train)) == (100, 300)


def test_cifar100_caps_keep_the_first_items_of_each_class(cifar_root):
    full = load("cifar100", cifar_root)
    src = load("cifar100", cifar_root, train_per_class=1, test_per_class=1)
    assert (len(src.train), len(src.test)) == (100, 100)
    first = {}
    for row, label in zip(full.train.items, full.train.labels):
        first.setdefault(label, row)
    assert list(src.train.items) == sorted(first.values())


def test_cifar100_missing_root_shows_the_layout(tmp_path):
    with pytest.raises(DatasetError) as e:
        load("cifar100", tmp_path / "nowhere")
    msg = str(e.value)
    assert msg.startswith(f"CIFAR-100 was not found at {tmp_path / 'nowhere'}.")
    assert "Expected layout:\n" in msg and "cifar-100-python/" in msg and "train  test  meta" in msg


def test_cifar100_download_failure_says_so(tmp_path, monkeypatch):
    def offline(root, train, download):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    # a stand-in torchvision: the real one would first spend seconds importing torch
    datasets = types.ModuleType("torchvision.datasets")
    datasets.CIFAR100 = offline
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    with pytest.raises(DatasetError, match="could not be downloaded") as e:
        load("cifar100", tmp_path / "c", download=True)
    assert "name resolution" in str(e.value) and "Expected layout:" in str(e.value)


def test_cifar100_rejects_a_damaged_or_foreign_pickle(tmp_path):
    root = make_cifar100(tmp_path / "c", 1, 1)
    train = root / "cifar-100-python" / "train"
    train.write_bytes(train.read_bytes()[:500])
    with pytest.raises(DatasetError, match=re.escape(str(train))):
        load("cifar100", root)
    train.write_bytes(pickle.dumps({b"data": [1, 2, 3]}))
    with pytest.raises(DatasetError, match="not a CIFAR-100 python pickle"):
        load("cifar100", root)


class _RunsCode:
    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_cifar100_pickles_cannot_run_code(tmp_path):
    root = make_cifar100(tmp_path / "c", 1, 1)
    evil = _RunsCode()
    evil.marker = tmp_path / "ran"
    (root / "cifar-100-python" / "meta").write_bytes(pickle.dumps({b"fine_label_names": evil}))
    with pytest.raises(DatasetError, match="pathlib"):
        load("cifar100", root)
    assert not evil.marker.exists()


# ----------------------------------------------------------------------------------------- ImageNet-R / -A


def test_names_cover_200_wnids_of_each_dataset():
    r, a = wnid_names("imagenet-r"), wnid_names("imagenet-a")
    for names in (r, a):
        assert len(names) == 200 and list(names) == sorted(names)
        assert all(re.fullmatch(r"n\d{8}", w) for w in names)
        assert all(n.strip() for n in names.values()) and len(set(names.values())) == 200
    assert set(r) != set(a) and 0 < len(set(r) & set(a)) < 200
    assert r["n01443537"] == "goldfish" and a["n01498041"] == "stingray"


@pytest.fixture(scope="module")
def wnid_root(tmp_path_factory):
    return make_wnid_tree(tmp_path_factory.mktemp("imr"), "imagenet-r", per_class=10)


def test_raw_tree_is_split_80_20_per_class_by_a_manifest(wnid_root):
    src = load("imagenet-r", wnid_root)
    names = wnid_names("imagenet-r")
    assert src.class_names == [names[w] for w in sorted(names)] and src.class_names[0] == "goldfish"
    assert set(per_class(src.train).values()) == {8} and set(per_class(src.test).values()) == {2}
    wnids = sorted(names)
    for split in (src.train, src.test):
        assert all(path.parent.name == wnids[label] for path, label in zip(split.items, split.labels))
    manifest = json.loads(src.run_files["split_manifest.json"])
    assert (manifest["seed"], manifest["test_fraction"]) == (0, 0.2)
    assert set(manifest["train"]).isdisjoint(manifest["test"])
    assert len(manifest["train"]) + len(manifest["test"]) == 2000
    assert [p.relative_to(wnid_root).as_posix() for p in src.test.items] == manifest["test"]
    img = src.test.image(0)
    assert (img.mode, img.size) == ("RGB", (8, 8))


def test_manifest_depends_on_the_seed_only(wnid_root, monkeypatch):
    first = load("imagenet-r", wnid_root).run_files["split_manifest.json"]
    listing = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: sorted(listing(path), key=lambda e: e.name, reverse=True))
    assert load("imagenet-r", wnid_root).run_files["split_manifest.json"] == first
    other = json.loads(load("imagenet-r", wnid_root, split_seed=1).run_files["split_manifest.json"])
    assert other["test"] != json.loads(first)["test"] and len(other["test"]) == 400


def test_test_fraction_rounds_half_up_and_keeps_a_training_image(wnid_root):
    src = load("imagenet-r", wnid_root, test_fraction=0.25)  # 2.5 of 10 → 3
    assert set(per_class(src.test).values()) == {3}
    src = load("imagenet-r", wnid_root, test_fraction=0.99)
    assert set(per_class(src.train).values()) == {1}


def test_caps_apply_after_the_split(wnid_root):
    src = load("imagenet-r", wnid_root, train_per_class=3, test_per_class=1)
    full = load("imagenet-r", wnid_root)
    assert set(per_class(src.train).values()) == {3} and set(per_class(src.test).values()) == {1}
    assert src.train.items[:3] == full.train.items[:3]
    assert describe(src)["train"] == {"images": 600, "per_class_min": 3, "per_class_max": 3}


@pytest.mark.parametrize("test_dir", ["test", "val"])
def test_pre_split_tree_is_used_as_is(tmp_path, test_dir):
    make_wnid_tree(tmp_path / "train", "imagenet-a", per_class=2)
    make_wnid_tree(tmp_path / test_dir, "imagenet-a", per_class=1, seed=1)
    src = load("imagenet-a", tmp_path)
    assert (len(src.class_names), len(src.train), len(src.test)) == (200, 400, 200)
    assert src.run_files == {} and src.class_names[0] == "stingray"
    assert all(p.parts[-3] == test_dir for p in src.test.items)


def test_file_names_hidden_files_and_suffix_case(tmp_path):
    root = make_wnid_tree(tmp_path, per_class=2)
    folder = root / "n01443537"
    shutil.copy(folder / "img_0.jpg", folder / "UPPER.JPEG")
    shutil.copy(folder / "img_0.jpg", folder / "._img_0.jpg")  # macOS resource fork
    (folder / "notes.txt").write_text("not an image")
    (root / ".cache").mkdir()
    src = load("imagenet-r", root)
    assert per_class(src.train)[0] + per_class(src.test)[0] == 3


def test_missing_root_shows_the_layout(tmp_path):
    with pytest.raises(DatasetError) as e:
        load("imagenet-r", tmp_path / "x" / "y")
    where = tmp_path / "x" / "y"
    assert str(e.value) == (
        f"ImageNet-R was not found at {where}. Expected layout:\n"
        f"  {where}/\n"
        "    n01443537/ *.jpg  (200 WordNet-id folders)\n"
        f"  or {where}/train/<wnid>/, {where}/test/<wnid>/  (val/ may stand for test/)"
    )


def test_incomplete_or_foreign_trees_are_refused(tmp_path):
    root = make_wnid_tree(tmp_path / "r", per_class=1)
    shutil.rmtree(root / "n01443537")
    with pytest.raises(DatasetError, match="lacks 1 of the 200 ImageNet-R class folders: n01443537") as e:
        load("imagenet-r", root)
    assert "200 WordNet-id folders" in str(e.value)
    (root / "n01443537").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load("imagenet-r", root)
    (root / "cats").mkdir()
    with pytest.raises(DatasetError, match="not ImageNet-R classes: cats"):
        load("imagenet-r", root)
    with pytest.raises(DatasetError, match="not ImageNet-A classes"):  # the other dataset's tree
        load("imagenet-a", make_wnid_tree(tmp_path / "a", "imagenet-r", per_class=1))
    (tmp_path / "p" / "train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="neither test/ nor val/"):
        load("imagenet-r", tmp_path / "p")


def test_a_truncated_jpeg_is_a_bad_image_naming_the_file(tmp_path):
    root = make_wnid_tree(tmp_path, per_class=2)
    bad = root / "n01443537" / "img_1.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(bad)
    bad.write_bytes(bad.read_bytes()[:-400])
    src = load("imagenet-r", root)
    split = src.train if bad in src.train.items else src.test
    with pytest.raises(BadImageError, match=re.escape(str(bad))):
        split.image(split.items.index(bad))


# ----------------------------------------------------------------------------------------- folder


def test_folder_reads_classes_from_folder_names(tmp_path):
    root = make_image_folder(tmp_path, ["golden_retriever", "cat", "zebra"], 3, 2)
    src = load("folder", root)
    assert src.class_names == ["cat", "golden retriever", "zebra"]
    assert (len(src.train), len(src.test)) == (9, 6)
    assert src.train.labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    folders = ["cat", "golden_retriever", "zebra"]
    assert all(p.parent.name == folders[y] for p, y in zip(src.test.items, src.test.labels))
    img = src.test.image(5)
    assert (img.mode, img.size) == ("RGB", (16, 16))
    assert describe(src) == {
        "dataset": "folder", "classes": 3, "first_classes": ["cat", "golden retriever", "zebra"],
        "train": {"images": 9, "per_class_min": 3, "per_class_max": 3},
        "test": {"images": 6, "per_class_min": 2, "per_class_max": 2}, "run_files": [],
    }
    capped = load("folder", root, test_per_class=1)
    assert capped.test.items == [src.test.items[i] for i in (0, 2, 4)]


def test_folder_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="was not found") as e:
        load("folder", tmp_path / "none")
    assert "train/<class>/" in str(e.value) and "test/<class>/" in str(e.value)
    root = make_image_folder(tmp_path / "f", ["a", "b"], 1, 1)
    shutil.rmtree(root / "test" / "b")
    (root / "test" / "c").mkdir()
    with pytest.raises(DatasetError, match=r"only in train/: b; only in test/: c"):
        load("folder", root)
    shutil.rmtree(root / "test")
    with pytest.raises(DatasetError, match="has no test/ folder"):
        load("folder", root)


# ----------------------------------------------------------------------------------------- cheap checks

@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_counts_its_classes_as_load_does_and_fails_as_load_does(name, tmp_path, monkeypatch):
    """``check`` (the launcher's preflight) agrees with a full read on the class count, and a root that
    is not there fails it with the very error the read would raise."""
    monkeypatch.setenv("SECA_TUI_HOME", str(tmp_path / "home"))  # shapes-r renders under the home
    roots = {"cifar100": lambda p: make_cifar100(p, 1, 1), "imagenet-r": lambda p: make_wnid_tree(p, "imagenet-r", 2),
             "imagenet-a": lambda p: make_wnid_tree(p, "imagenet-a", 2),
             "folder": lambda p: make_image_folder(p, ["cat", "dog", "fox"], 1, 1)}
    root = roots[name](tmp_path / "data") if name in roots else tmp_path / "data"
    cfg = DataConfig(name=name, root=str(root), synthetic_classes=7, train_per_class=1, test_per_class=1)
    assert class_count(cfg) == len(load_source(cfg).class_names)
    if name in roots:
        missing = DataConfig(name=name, root=str(tmp_path / "nowhere"))
        with pytest.raises(DatasetError) as read:
            load_source(missing)
        with pytest.raises(DatasetError) as checked:
            class_count(missing)
        assert str(checked.value) == str(read.value)


def test_a_cifar100_download_is_left_to_the_engine(tmp_path):
    assert class_count(DataConfig(name="cifar100", root=str(tmp_path / "empty"), download=True)) == 100
    assert not (tmp_path / "empty").exists()  # nothing fetched, nothing made
