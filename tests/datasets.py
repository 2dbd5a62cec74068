"""Tiny datasets in the real on-disk formats, for tests that read data the way a user's data is read."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from engine.data.imagenet import wnid_names

# The official fine label names, in label order (meta b'fine_label_names').
CIFAR100_NAMES = """
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel
can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur
dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion
lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree
pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea
seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table
tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman
worm
""".split()


def _pixels(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _cifar_split(path: Path, per_class: int, rng: np.random.Generator) -> None:
    labels = rng.permutation(np.repeat(np.arange(100), per_class)).tolist()  # the official files are mixed too
    tree = {
        b"filenames": [f"image_{i}.png".encode() for i in range(len(labels))],
        b"fine_labels": labels,
        b"data": _pixels(rng, len(labels), 3072),
    }
    path.write_bytes(pickle.dumps(tree, protocol=2))  # the protocol of the official cPickle files


def make_cifar100(root: Path, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> Path:
    """``root/cifar-100-python/{train,test,meta}`` with random pixels for all 100 classes; returns root."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    _cifar_split(folder / "train", train_per_class, rng)
    _cifar_split(folder / "test", test_per_class, rng)
    meta = {b"fine_label_names": [n.encode() for n in CIFAR100_NAMES]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return Path(root)


def make_wnid_tree(root: Path, dataset: str = "imagenet-r", per_class: int = 3, seed: int = 0) -> Path:
    """``root/<wnid>/img_<i>.jpg`` (8 × 8 JPEGs) for all 200 wnids of ``dataset``; returns root."""
    rng = np.random.default_rng(seed)
    for wnid in wnid_names(dataset):
        folder = Path(root) / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(_pixels(rng, 8, 8, 3)).save(folder / f"img_{i}.jpg", quality=90)
    return Path(root)


def make_image_folder(
    root: Path, classes: list[str], train_per_class: int, test_per_class: int, size: int = 16, seed: int = 0
) -> Path:
    """``root/{train,test}/<class>/<i>.png`` with random pixels; returns root."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for name in classes:
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(_pixels(rng, size, size, 3)).save(folder / f"{i}.png")
    return Path(root)
