"""`synthetic`: noise images of a given shape, for benchmarks of the real pipeline at real sizes.

Class k's images are drawn around a per-class mean colour so a model can learn something; every
image is a pure function of (split, class, index). Sizes: ``data.synthetic_classes`` classes,
``data.train_per_class`` / ``data.test_per_class`` images each (0 → 120 / 30, ImageNet-R's 80/20 of
150), ``data.synthetic_size`` pixels square.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from engine.config import DataConfig
from engine.data.source import DataSource, Split


def _image(split: str, label: int, index: int, size: int) -> Image.Image:
    rng = np.random.default_rng([0 if split == "train" else 1, label, index])
    mean = np.random.default_rng(label).integers(40, 216, 3)
    pixels = np.clip(rng.normal(mean, 40, (size, size, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels)


def _split(name: str, classes: int, per_class: int, size: int) -> Split:
    items = [(name, c, i) for c in range(classes) for i in range(per_class)]
    return Split(items=items, labels=[c for _, c, _ in items], load=lambda item: _image(*item, size),
                 describe=lambda item: f"synthetic {item[0]} image {item[2]} of class {item[1]}")


def check(cfg: DataConfig) -> int:
    return cfg.synthetic_classes


def load(cfg: DataConfig) -> DataSource:
    n = cfg.synthetic_classes
    names = [f"class {c:03d}" for c in range(n)]
    return DataSource("synthetic", names, _split("train", n, cfg.train_per_class or 120, cfg.synthetic_size),
                      _split("test", n, cfg.test_per_class or 30, cfg.synthetic_size))
