"""Torch views of a task: the images of some classes, labels remapped, each item knows its index."""
from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader, Dataset

from engine.data.source import BadImageError, Split

log = logging.getLogger("engine.data")


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
            log.warning("skipped: %s", e)
            return None  # dropped by `collate`
        return self.transform(image), self.labels[pos], pos


def collate(batch):
    """Stack a batch, leaving out images that could not be read (data.bad_images = skip)."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    images, labels, positions = zip(*batch)
    return torch.stack(images), torch.tensor(labels), torch.tensor(positions)


def make_loader(dataset: TaskDataset, batch_size: int, shuffle: bool, seed: int, workers: int) -> DataLoader:
    """A loader whose shuffle depends only on ``seed``, so a resumed task sees the same batches."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=workers,
        collate_fn=collate, persistent_workers=False,
    )
