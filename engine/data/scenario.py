"""The class-incremental task plan: class order, tasks, labels remapped in order of arrival."""
from __future__ import annotations

import random
from dataclasses import dataclass

import yaml

from engine.config import PRESETS_DIR, ConfigError, ScenarioConfig


@dataclass
class TaskPlan:
    order: list[int]  # dataset class index of the k-th class to arrive
    class_names: list[str]  # names in order of arrival (label k ↔ class_names[k])
    tasks: list[list[int]]  # remapped labels of each task: [[0..9], [10..19], ...]

    @property
    def label_of(self) -> dict[int, int]:
        """dataset class index → remapped label."""
        return {c: k for k, c in enumerate(self.order)}

    def fingerprint(self) -> dict:
        """What a checkpoint must agree with to be resumed under this plan."""
        return {"order": self.order, "tasks": self.tasks}


def named_orders(name: str) -> list[list[int]]:
    orders = yaml.safe_load((PRESETS_DIR / "class_orders.yaml").read_text())
    if name not in orders:
        raise ConfigError(f"Config key 'scenario.order' has value '{name}', but presets/class_orders.yaml defines only: {', '.join(orders)}.")
    return orders[name]


def class_order(cfg: ScenarioConfig, n_classes: int) -> list[int]:
    """Explicit list > named order (trial-th of the list) > shuffle seeded by seed + trial."""
    if cfg.class_order:
        order, origin = list(cfg.class_order), "scenario.class_order"
    elif cfg.order:
        orders = named_orders(cfg.order)
        if cfg.trial >= len(orders):
            raise ConfigError(f"Config key 'scenario.trial' has value {cfg.trial}, but order '{cfg.order}' has {len(orders)} trials.")
        order, origin = list(orders[cfg.trial]), f"order '{cfg.order}'"
    else:
        order = list(range(n_classes))
        random.Random(cfg.seed + cfg.trial).shuffle(order)
        origin = "seeded order"
    if len(set(order)) != len(order):
        dup = next(c for c in order if order.count(c) > 1)
        raise ConfigError(f"The class order ({origin}) lists class {dup} more than once.")
    if sorted(order) != list(range(n_classes)):
        raise ConfigError(f"The class order ({origin}) has {len(order)} classes, but the dataset has {n_classes}: it must list each of 0..{n_classes - 1} once.")
    return order


def task_sizes(cfg: ScenarioConfig, n_classes: int) -> list[int]:
    T = cfg.n_tasks
    if T > n_classes:
        raise ConfigError(f"Config key 'scenario.n_tasks' has value {T}, but there are only {n_classes} classes.")
    if cfg.initial_increment:
        sizes = [cfg.initial_increment] + [cfg.increment] * (T - 1)
        if sum(sizes) != n_classes:
            raise ConfigError(
                f"An initial increment of {cfg.initial_increment} plus {T - 1} increments of {cfg.increment} "
                f"cover {sum(sizes)} classes, but there are {n_classes}."
            )
        return sizes
    if n_classes % T:
        raise ConfigError(
            f"{n_classes} classes cannot be split into {T} equal tasks; change scenario.n_tasks or set "
            f"scenario.initial_increment and scenario.increment."
        )
    return [n_classes // T] * T


def build_plan(cfg: ScenarioConfig, class_names: list[str]) -> TaskPlan:
    order = class_order(cfg, len(class_names))
    if cfg.classes:  # a reduced run: the first N classes of the order
        if cfg.classes > len(order):
            raise ConfigError(f"Config key 'scenario.classes' has value {cfg.classes}, but the dataset has {len(order)} classes.")
        order = order[: cfg.classes]
    sizes = task_sizes(cfg, len(order))
    starts = [sum(sizes[:t]) for t in range(len(sizes))]
    tasks = [list(range(s, s + n)) for s, n in zip(starts, sizes)]
    return TaskPlan(order=order, class_names=[class_names[c] for c in order], tasks=tasks)
