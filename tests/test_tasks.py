"""Task numbers for people: the one conversion every view goes through (events stay 0-based)."""
from __future__ import annotations

from seca_tui import tasks


def test_people_count_tasks_from_one():
    assert [tasks.number(t) for t in range(3)] == [1, 2, 3]
    assert [tasks.label(t) for t in range(3)] == ["T1", "T2", "T3"]


def test_pool_labels_are_named_like_the_matrix_tasks():
    assert tasks.pool_label("task 0") == "T1" and tasks.pool_label("task 19") == "T20"
    assert tasks.pool_label("clip") == "clip" and tasks.pool_label("task 3b") == "task 3b"
