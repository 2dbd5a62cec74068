"""CIFAR-100 from the official python pickles ``cifar-100-python/{train,test,meta}``.

Each split file holds ``b'data'`` (N × 3072 uint8, the red, green and blue 32 × 32 planes of each image
in a row) and ``b'fine_labels'``; ``meta`` holds ``b'fine_label_names'`` in label order, which is
alphabetical, so the official label ids are also the sorted class list that the class orders index.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from engine.config import DataConfig
from engine.data.source import DataSource, Split, layout_error, make_source
from engine.paths import data_root

FOLDER = "cifar-100-python"
FILES = ("train", "test", "meta")

# Unpickling can run any code a file names; these pickles need nothing beyond a numpy array.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),  # written by numpy 1.x (the official files)
    ("numpy._core.multiarray", "_reconstruct"),  # written by numpy 2.x
    ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR-100 pickle never does")
        return super().find_class(module, name)


class _Rows:
    """Images of one split as a single (N, 32, 32, 3) uint8 array; an item is a row index."""

    def __init__(self, images: np.ndarray, path: Path):
        self.images = images
        self.path = path

    def image(self, row: int) -> Image.Image:
        return Image.fromarray(self.images[row])

    def name(self, row: int) -> str:
        return f"{self.path} row {row}"


def _layout(root: Path) -> str:
    return (
        f"{root}/\n"
        f"  {FOLDER}/\n"
        "    train  test  meta  (the official python pickles)\n"
        f"or {root}/ itself holding train, test and meta"
    )


def _find(root: Path) -> Path | None:
    """The folder holding the three pickles: ``root/cifar-100-python`` or ``root`` itself."""
    for base in (root / FOLDER, root):
        if all((base / f).is_file() for f in FILES):
            return base
    return None


def _download(root: Path, layout: str) -> None:
    try:
        from torchvision.datasets import CIFAR100  # heavy; only when a download is asked for

        CIFAR100(str(root), train=True, download=True)
    except Exception as e:  # no network, a proxy, a bad checksum, a full disk: all end the same way
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise layout_error(
            f"CIFAR-100 is not at {root} and could not be downloaded there ({reason}); "
            "without a network, unpack cifar-100-python.tar.gz there yourself.",
            layout,
        ) from None


def _read(path: Path, layout: str) -> dict:
    try:
        with open(path, "rb") as f:
            tree = _ArrayUnpickler(f, encoding="bytes").load()  # the keys are Python 2 byte strings
    except Exception as e:  # a truncated or foreign file can fail in any way unpickling can
        raise layout_error(f"{path} is not a readable CIFAR-100 python pickle ({e}).", layout) from None
    if not isinstance(tree, dict):
        raise layout_error(f"{path} is not a CIFAR-100 python pickle (it holds no dictionary).", layout)
    return tree


def _split(path: Path, n_classes: int, layout: str) -> Split:
    tree = _read(path, layout)
    data = tree.get(b"data")
    labels = tree.get(b"fine_labels")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072
            and isinstance(labels, list) and len(labels) == len(data)
            and all(isinstance(y, int) and 0 <= y < n_classes for y in labels)):
        raise layout_error(
            f"{path} is not a CIFAR-100 python pickle (it needs b'data', N × 3072 uint8, "
            f"and N b'fine_labels' below {n_classes}).",
            layout,
        )
    images = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    rows = _Rows(images, path)
    return Split(items=range(len(labels)), labels=list(labels), load=rows.image, describe=rows.name)


def _not_found(root: Path):
    return layout_error(f"CIFAR-100 was not found at {root}.", _layout(root))


def check(cfg: DataConfig) -> int:
    """The 100 classes, once the pickles are there or a download is asked for; reading their 150 MB
    is the engine's job."""
    root = data_root(cfg.name, cfg.root)
    if _find(root) is None and not cfg.download:
        raise _not_found(root)
    return 100


def load(cfg: DataConfig) -> DataSource:
    root = data_root(cfg.name, cfg.root)
    layout = _layout(root)
    base = _find(root)
    if base is None and cfg.download:
        _download(root, layout)
        base = _find(root)
    if base is None:
        raise _not_found(root)
    meta = _read(base / "meta", layout)
    raw_names = meta.get(b"fine_label_names")
    if not isinstance(raw_names, list) or len(raw_names) != 100:
        raise layout_error(f"{base / 'meta'} does not list the 100 b'fine_label_names'.", layout)
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw_names]
    class_names = [n.replace("_", " ") for n in class_names]  # "aquarium_fish" reads as a phrase
    return make_source(cfg, class_names, _split(base / "train", 100, layout), _split(base / "test", 100, layout))
