"""Task plans: class orders from a list, a named preset order or a seed; labels in order of arrival."""
import pytest

from engine.config import ConfigError, ScenarioConfig
from engine.data.scenario import build_plan, named_orders

NAMES = [f"c{i}" for i in range(100)]


def test_named_order_and_remapping():
    plan = build_plan(ScenarioConfig(n_tasks=10, order="cifar100", trials=3, trial=1), NAMES)
    order = named_orders("cifar100")[1]
    assert plan.order == order and plan.class_names[0] == f"c{order[0]}"
    assert plan.tasks[0] == list(range(10)) and plan.tasks[-1] == list(range(90, 100))


def test_seeded_orders_differ_by_trial_and_repeat_by_seed():
    a = build_plan(ScenarioConfig(n_tasks=5, trials=2, trial=0), NAMES).order
    b = build_plan(ScenarioConfig(n_tasks=5, trials=2, trial=1), NAMES).order
    assert a != b and a == build_plan(ScenarioConfig(n_tasks=5, trials=2, trial=0), NAMES).order
    assert sorted(a) == list(range(100))


def test_initial_increment():
    plan = build_plan(ScenarioConfig(n_tasks=6, initial_increment=50, increment=10), NAMES)
    assert [len(t) for t in plan.tasks] == [50, 10, 10, 10, 10, 10]


@pytest.mark.parametrize("cfg, fragment", [
    (ScenarioConfig(n_tasks=3, class_order=[0, 1, 1]), "more than once"),
    (ScenarioConfig(n_tasks=3, class_order=[0, 1, 2]), "it must list each of 0..99 once"),
    (ScenarioConfig(n_tasks=101), "only 100 classes"),
    (ScenarioConfig(n_tasks=7), "cannot be split into 7 equal tasks"),
    (ScenarioConfig(n_tasks=3, initial_increment=50, increment=10), "cover 70 classes"),
    (ScenarioConfig(n_tasks=3, order="nope"), "defines only"),
])
def test_bad_plans(cfg, fragment):
    with pytest.raises(ConfigError, match=fragment):
        build_plan(cfg, NAMES)
