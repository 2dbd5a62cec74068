"""Continual-learning metrics from the accuracy matrix (seca-method.md §8). Pure, torch-free.

``acc[t][i]`` is a_{t,i}: accuracy (%) on task i's test set after learning task t (i ≤ t), and
``n[i]`` the number of test samples of task i. Tasks are 0-based here; T = number of rows.
"""
from __future__ import annotations

from typing import Sequence

Matrix = Sequence[Sequence[float]]


def average_incremental(acc_row: Sequence[float], n: Sequence[int]) -> float:
    """A_t: accuracy over the union of the test sets of tasks 0..t, i.e. the sample-weighted mean of row t."""
    seen = n[: len(acc_row)]
    return sum(a * k for a, k in zip(acc_row, seen)) / sum(seen)


def last(acc: Matrix, n: Sequence[int]) -> float:
    """Last = A_T."""
    return average_incremental(acc[-1], n)


def avg(acc: Matrix, n: Sequence[int]) -> float:
    """Avg = (1/T) Σ_t A_t."""
    return sum(average_incremental(row, n) for row in acc) / len(acc)


def forgetting_per_task(acc: Matrix) -> list[float]:
    """For each old task i < T: max_{t∈[i,T−1]} a_{t,i} − a_{T,i}, the drop from its best to now."""
    T = len(acc) - 1
    return [max(acc[t][i] for t in range(i, T)) - acc[T][i] for i in range(T)]


def forgetting(acc: Matrix) -> float | None:
    """Mean over i < T of max_{t∈[i,T−1]} a_{t,i} − a_{T,i}; None when only one task was learned."""
    drops = forgetting_per_task(acc)
    return sum(drops) / len(drops) if drops else None


def bwt(acc: Matrix) -> float | None:
    """Backward transfer: mean over i < T of a_{T,i} − a_{i,i}; None when only one task was learned."""
    T = len(acc) - 1
    if T < 1:
        return None
    return sum(acc[T][i] - acc[i][i] for i in range(T)) / T


def summary(acc: Matrix, n: Sequence[int]) -> dict[str, float | None]:
    """The `run_finished` fields."""
    return {"last": last(acc, n), "avg": avg(acc, n), "forgetting": forgetting(acc), "bwt": bwt(acc)}
