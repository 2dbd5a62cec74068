"""Continual-learning metrics over an accuracy matrix, as pure functions (no torch).

``matrix[t][i]`` is a_{t,i}: accuracy (percent) on task i's test set after learning task t, for
i ≤ t; rows may be ragged (row t has t + 1 entries). Definitions follow seca-method.md §8 and match
``engine/metrics.py``:

- A_t = accuracy over the union of the test sets of tasks 0..t (sample-weighted);
- Last = A_T, Avg = mean of A_t over t;
- forgetting = mean over i < T of max_{t ∈ [i, T−1]} a_{t,i} − a_{T,i};
- BWT = mean over i < T of a_{T,i} − a_{i,i}.

With a single task there is nothing to forget: forgetting and BWT are ``None`` (not 0), so a table
can tell "not defined yet" from "no forgetting".
"""
from __future__ import annotations

from typing import Sequence

Matrix = Sequence[Sequence[float]]


def incremental_accuracy(row: Sequence[float], counts: Sequence[int]) -> float:
    """A_t from one matrix row: the mean of a_{t,i} weighted by each task's number of test samples."""
    total = sum(counts[: len(row)])
    if not total:
        raise ValueError("incremental_accuracy needs at least one test sample")
    return sum(a * n for a, n in zip(row, counts)) / total


def average(accs: Sequence[float]) -> float | None:
    """Avg = (1/T) Σ_t A_t; ``None`` before the first evaluation."""
    return sum(accs) / len(accs) if accs else None


def forgetting_per_task(matrix: Matrix) -> list[float]:
    """For each old task i: max_{t ∈ [i, T−1]} a_{t,i} − a_{T,i}, the drop from its best to now."""
    last = len(matrix) - 1
    return [max(matrix[t][i] for t in range(i, last)) - matrix[last][i] for i in range(last)]


def forgetting(matrix: Matrix) -> float | None:
    """Mean over old tasks i of the drop from their best accuracy before the last task to now."""
    drops = forgetting_per_task(matrix)
    return sum(drops) / len(drops) if drops else None


def bwt(matrix: Matrix) -> float | None:
    """Backward transfer: mean over old tasks i of a_{T,i} − a_{i,i} (negative when forgetting)."""
    last = len(matrix) - 1
    if last < 1:
        return None
    return sum(matrix[last][i] - matrix[i][i] for i in range(last)) / last


def summary(matrix: Matrix, accs: Sequence[float]) -> dict[str, float | None]:
    """Last, Avg, forgetting and BWT after the tasks seen so far (``accs[t]`` is A_t)."""
    return {
        "last": accs[-1] if accs else None,
        "avg": average(accs),
        "forgetting": forgetting(matrix),
        "bwt": bwt(matrix),
    }
