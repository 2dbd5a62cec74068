"""A task's images, decoded once into a uint8 tensor, and its batches.

CLIP's eval transform is split in two: the geometric part (resize, centre crop) runs once per image
on the CPU, in threads, into ``uint8 [N, 3, H, W]``; the float conversion and normalisation run per
batch on the device. With no augmentation an epoch only indexes that tensor, so data loading never
starves the GPU, and on CUDA the whole task sits in GPU memory (ImageNet-R: 2,400 × 150 KB).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Sampler
from torchvision import transforms as T

from engine.data.source import BadImageError, Split


class Preprocess:
    """CLIP's eval transform as (geometry → uint8 on the CPU, normalisation on the device)."""

    def __init__(self, transform: T.Compose):
        steps = list(transform.transforms)
        norm = next(t for t in steps if isinstance(t, T.Normalize))
        self.geometry = T.Compose([t for t in steps if isinstance(t, (T.Resize, T.CenterCrop))])
        self.mean = torch.tensor(norm.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(norm.std).view(1, 3, 1, 1)

    def to_uint8(self, image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.geometry(image.convert("RGB")), dtype=np.uint8).copy()).permute(2, 0, 1)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 → the float input CLIP expects: ToTensor's /255 then Normalize, on ``images``' device."""
        x = images.float().div_(255)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


@dataclass
class TaskImages:
    images: torch.Tensor  # uint8 [N, 3, H, W]
    labels: torch.Tensor  # remapped labels [N]

    def __len__(self) -> int:
        return len(self.labels)


def decode(split: Split, label_of: dict[int, int], preprocess: Preprocess, skip_bad: bool,
           warn: Callable[[str], None], device: torch.device, threads: int = 0) -> TaskImages:
    """The images of ``split`` whose class is in ``label_of``, decoded in threads (PIL releases the
    GIL). An unreadable image is skipped with ``warn`` or raises BadImageError (data.bad_images)."""
    indices = [i for i, c in enumerate(split.labels) if c in label_of]

    def one(i: int):
        try:
            return preprocess.to_uint8(split.image(i))
        except BadImageError as e:
            if not skip_bad:
                raise
            return str(e)

    with ThreadPoolExecutor(threads or min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(one, indices))
    for item in decoded:
        if isinstance(item, str):
            warn(item)
    kept = [(img, label_of[split.labels[i]]) for img, i in zip(decoded, indices) if not isinstance(img, str)]
    if not kept:
        raise BadImageError(f"None of the {len(indices)} images of classes {sorted(label_of)} could be read.")
    images = torch.stack([img for img, _ in kept]).to(device)
    return TaskImages(images, torch.tensor([label for _, label in kept], device=device))


class GlobalBatchSampler(Sampler[list[int]]):
    """Global batches of a permutation seeded by ``seed``; rank r of ``world`` takes every world-th
    item of each one, so N data-parallel ranks together see exactly the batches one process sees
    (the permutation depends only on the seed, so a resumed task sees them too)."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.shuffle, self.seed, self.rank, self.world = n, batch_size, shuffle, seed, rank, world

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def share(self, k: int) -> float:
        """This rank's part of global batch k relative to an even split: scales its mean loss so the
        ranks' averaged gradient is the gradient of the global batch's mean loss."""
        size = min(self.batch_size, self.n - k * self.batch_size)
        return len(range(self.rank, size, self.world)) * self.world / size

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed)) if self.shuffle else torch.arange(self.n)
        for k in range(len(self)):
            batch = order[k * self.batch_size : (k + 1) * self.batch_size]
            mine = batch[self.rank :: self.world]
            # a rank with nothing in a short last batch still steps (collectives must match): one
            # stand-in item whose loss the share of 0 cancels
            yield (mine if len(mine) else batch[:1]).tolist()


class Batches:
    """(normalised images, labels, positions) on the task images' device; positions index the task."""

    def __init__(self, data: TaskImages, sampler: GlobalBatchSampler, preprocess: Preprocess):
        self.dataset, self.sampler, self.preprocess = data, sampler, preprocess

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        device = self.dataset.images.device
        for idx in self.sampler:
            positions = torch.tensor(idx, device=device)
            yield self.preprocess.normalize(self.dataset.images[positions]), self.dataset.labels[positions], positions


def batches(data: TaskImages, preprocess: Preprocess, batch_size: int, shuffle: bool = False, seed: int = 0,
            rank: int = 0, world: int = 1) -> Batches:
    """This rank's part of each global batch of ``batch_size``."""
    return Batches(data, GlobalBatchSampler(len(data), batch_size, shuffle, seed, rank, world), preprocess)
