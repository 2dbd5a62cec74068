"""Continual-learning metrics over an accuracy matrix, as pure functions (no torch).

``matrix[t][i]`` is a_{t,i}: accuracy (percent) on task i's test set after learning task t, for
i ≤ t; rows may be ragged (row t has t + 1 entries). Definitions follow seca-method.md §8 and are
``engine/metrics.py``'s, imported from there:

- A_t = accuracy over the union of the test sets of tasks 0..t (sample-weighted);
- Last = A_T, Avg = mean of A_t over t;
- forgetting = mean over i < T of max_{t ∈ [i, T−1]} a_{t,i} − a_{T,i};
- BWT = mean over i < T of a_{T,i} − a_{i,i}.

With a single task there is nothing to forget: forgetting and BWT are ``None`` (not 0), so a table
can tell "not defined yet" from "no forgetting".
"""
from __future__ import annotations

from typing import Sequence

# one definition of each metric: engine/metrics.py is pure and torch-free, so the UI side reuses it
from engine.metrics import Matrix, bwt, forgetting, forgetting_per_task  # noqa: F401  (re-exported)
from engine.metrics import average_incremental


def incremental_accuracy(row: Sequence[float], counts: Sequence[int]) -> float:
    """A_t from one matrix row: the mean of a_{t,i} weighted by each task's number of test samples."""
    if not sum(counts[: len(row)]):
        raise ValueError("incremental_accuracy needs at least one test sample")
    return average_incremental(row, counts)


def average(accs: Sequence[float]) -> float | None:
    """Avg = (1/T) Σ_t A_t; ``None`` before the first evaluation."""
    return sum(accs) / len(accs) if accs else None


def summary(matrix: Matrix, accs: Sequence[float]) -> dict[str, float | None]:
    """Last, Avg, forgetting and BWT after the tasks seen so far (``accs[t]`` is A_t)."""
    return {
        "last": accs[-1] if accs else None,
        "avg": average(accs),
        "forgetting": forgetting(matrix),
        "bwt": bwt(matrix),
    }
