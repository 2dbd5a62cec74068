"""Metrics on hand-computed accuracy matrices (seca-method.md §8)."""
import pytest

from engine import metrics

# a_{t,i}: three tasks of 10, 20 and 10 test samples
ACC = [[90.0], [70.0, 80.0], [60.0, 85.0, 50.0]]
N = [10, 20, 10]


def test_incremental_accuracy_is_sample_weighted():
    assert metrics.average_incremental(ACC[1], N) == pytest.approx((70 * 10 + 80 * 20) / 30)
    assert metrics.last(ACC, N) == pytest.approx((600 + 1700 + 500) / 40)  # 70.0


def test_avg_is_the_mean_of_a_t():
    a = [90.0, (700 + 1600) / 30, 70.0]
    assert metrics.avg(ACC, N) == pytest.approx(sum(a) / 3)


def test_forgetting_and_bwt_differ_when_a_task_peaks_late():
    # task 1 reached 85 at the end but 80 when learned; forgetting uses the best earlier value
    # (max over t in [i, T-1]), BWT the value right after learning
    acc = [[90.0], [70.0, 80.0], [60.0, 85.0, 50.0]]
    # forgetting: task0 max(90,70)-60 = 30; task1 max(80)-85 = -5 → mean 12.5
    assert metrics.forgetting(acc) == pytest.approx(12.5)
    # bwt: task0 60-90 = -30; task1 85-80 = +5 → mean -12.5
    assert metrics.bwt(acc) == pytest.approx(-12.5)
    acc2 = [[90.0], [95.0, 80.0], [60.0, 70.0, 50.0]]
    # forgetting: max(90,95)-60 = 35, 80-70 = 10 → 22.5; bwt: -30, -10 → -20: not each other's negative
    assert metrics.forgetting(acc2) == pytest.approx(22.5)
    assert metrics.bwt(acc2) == pytest.approx(-20.0)


def test_one_task_has_no_forgetting():
    assert metrics.forgetting([[50.0]]) is None and metrics.bwt([[50.0]]) is None
    assert metrics.summary([[50.0]], [4]) == {"last": 50.0, "avg": 50.0, "forgetting": None, "bwt": None}
