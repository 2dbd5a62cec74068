"""Class prototypes: the coarse means of frozen-CLIP features and the stored bank (seca-method.md §4)."""
from __future__ import annotations

from typing import Any, Literal, Sequence

import torch
import torch.nn.functional as F


def class_means(features: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """c_k = normalize(mean of the features labelled k), one row per entry of ``classes`` in that
    order (seca-method.md §4). features [N, D], labels [N]."""
    rows = []
    for c in classes:
        members = features[labels == c]
        if len(members) == 0:
            raise ValueError(f"class {c} has no features to average")
        rows.append(members.mean(dim=0))
    return F.normalize(torch.stack(rows), dim=-1)


class PrototypeBank:
    """Prototypes [K, D] of the seen classes, in the order they were stored (oldest tasks first).

    Holds the coarse prototypes C (appended per task, never recomputed) and, separately, the stored
    refined prototypes ĉ^stored used by L_reg and the classifier.
    """

    def __init__(self) -> None:
        self.classes: list[int] = []
        self.vectors: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.classes)

    def append(self, classes: Sequence[int], vectors: torch.Tensor) -> None:
        """Add the rows of classes not stored yet; a class already present is a caller bug."""
        classes = [int(c) for c in classes]
        if len(classes) != len(vectors):
            raise ValueError(f"{len(classes)} classes but {len(vectors)} prototype rows")
        clash = set(classes) & set(self.classes)
        if clash:
            raise ValueError(f"classes {sorted(clash)} already have stored prototypes")
        vectors = vectors.detach()
        self.vectors = vectors if self.vectors is None else torch.cat([self.vectors, vectors.to(self.vectors)])
        self.classes += classes

    def replace(self, classes: Sequence[int], vectors: torch.Tensor) -> None:
        """Drop everything and store these rows."""
        self.classes, self.vectors = [], None
        self.append(classes, vectors)

    def store_refined(
        self, seen: Sequence[int], refined: torch.Tensor, mode: Literal["append", "replace"]
    ) -> None:
        """End of task (seca-method.md §4): ``refined`` [K, D] covers all ``seen`` classes; plain SECA
        (``append``) keeps the stored rows and adds only the new classes', SECA++ (``replace``)
        stores them all."""
        if mode == "replace":
            self.replace(seen, refined)
        elif mode == "append":
            stored = set(self.classes)
            keep = [i for i, c in enumerate(seen) if int(c) not in stored]
            self.append([seen[i] for i in keep], refined[keep])
        else:
            raise ValueError(f"mode must be 'append' or 'replace', not {mode!r}")

    def state_dict(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "vectors": None if self.vectors is None else self.vectors.cpu()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        vectors = state["vectors"]
        self.classes = [int(c) for c in state["classes"]]
        self.vectors = None if vectors is None else vectors.to(device)
