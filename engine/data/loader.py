"""Torch views of a task: the images of some classes, labels remapped, each item knows its index."""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from engine.data.source import BadImageError, Split


class TaskDataset(Dataset):
    """Items of ``split`` whose class is in ``label_of`` → (image tensor, remapped label, position)."""

    def __init__(self, split: Split, label_of: dict[int, int], transform, skip_bad: bool):
        self.split, self.transform, self.skip_bad = split, transform, skip_bad
        self.indices = [i for i, c in enumerate(split.labels) if c in label_of]
        self.labels = [label_of[split.labels[i]] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, pos: int):
        try:
            image = self.split.image(self.indices[pos])
        except BadImageError as e:
            if not self.skip_bad:
                raise
            return str(e)  # `collate` drops it and hands the message to the main process
        return self.transform(image), self.labels[pos], pos


def collate(batch):
    """Stack a batch, leaving out images that could not be read (data.bad_images = skip)."""
    skipped = [b for b in batch if isinstance(b, str)]
    kept = [b for b in batch if not isinstance(b, str)]
    if not kept:
        return None, None, None, skipped
    images, labels, positions = zip(*kept)
    return torch.stack(images), torch.tensor(labels), torch.tensor(positions), skipped


class Batches:
    """A task's batches as (images, labels, positions) on ``device``; each unreadable image is
    reported once through ``warn`` (it may come from a worker process, hence the message)."""

    def __init__(self, loader: DataLoader, device: torch.device, warn: Callable[[str], None]):
        self.loader, self.device, self.warn = loader, device, warn

    @property
    def dataset(self) -> TaskDataset:
        return self.loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def sampler(self) -> "GlobalBatchSampler":
        return self.loader.batch_sampler

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        for images, labels, positions, skipped in self.loader:
            for message in skipped:
                self.warn(message)
            if images is not None:
                yield (images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True),
                       positions.to(self.device, non_blocking=True))


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


def make_loader(dataset: TaskDataset, batch_size: int, shuffle: bool, seed: int, workers: int,
                device: torch.device, warn: Callable[[str], None], rank: int = 0, world: int = 1) -> Batches:
    """Batches of ``dataset``: this rank's part of each global batch of ``batch_size``."""
    sampler = GlobalBatchSampler(len(dataset), batch_size, shuffle, seed, rank, world)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                        pin_memory=device.type == "cuda")
    return Batches(loader, device, warn)
