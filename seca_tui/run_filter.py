"""Which runs a filter keeps: by tag, by method or variant, by config value (``train.lr=1e-3``,
``seca.kd=mean``, or a key's last part alone when only one key ends so: ``lr=1e-3``).

A value is compared in the config's own type: numbers as numbers (``1e-3`` matches ``0.001``),
booleans as YAML reads them (``true``, ``off``), anything else as text.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from engine.config import ConfigError
from seca_tui.export import flatten
from seca_tui.store import Store


def parse_where(text: str) -> tuple[str, str]:
    """``"train.lr=1e-3"`` → ``("train.lr", "1e-3")``; a ``config.`` prefix is allowed."""
    key, sep, value = text.partition("=")
    key = key.strip().removeprefix("config.")
    if not sep or not key:
        raise ConfigError(f"A config filter is written key=value (e.g. train.lr=1e-3), not '{text}'.")
    return key, value.strip()


def resolve_key(keys: Iterable[str], key: str) -> str:
    """The config key ``key`` names: itself, or the one key that ends with ``.key``."""
    keys = set(keys)
    if key in keys:
        return key
    ending = sorted(k for k in keys if k.endswith("." + key))
    if len(ending) == 1:
        return ending[0]
    if ending:
        raise ConfigError(f"'{key}' could be {', '.join(ending)}; write the whole key.")
    raise ConfigError(f"No run has a config key '{key}'.")


def equal(stored: Any, text: str) -> bool:
    """Whether a config value equals what the user typed, in the value's own type."""
    if isinstance(stored, bool):
        return text.lower() in (("true", "yes", "on", "1") if stored else ("false", "no", "off", "0"))
    if isinstance(stored, (int, float)):
        try:
            return float(text) == float(stored)
        except ValueError:
            return False
    if stored is None:
        return text.lower() in ("", "null", "none", "~")
    if isinstance(stored, list):
        return text.strip("[] ").replace(" ", "") == ",".join(map(str, stored))
    return str(stored) == text


def matches(run: dict, flat: dict[str, Any], tags: Sequence[str], methods: Sequence[str],
            wheres: Sequence[tuple[str, str]]) -> bool:
    """Every tag, one of the methods (the run's method or its variant's name), every key=value."""
    if not set(tags) <= set(run.get("tags") or []):
        return False
    if methods and not {run.get("method"), run.get("variant")} & set(methods):
        return False
    return all(key in flat and equal(flat[key], value) for key, value in wheres)


def filter_runs(store: Store, runs: list[dict], tags: Sequence[str] = (), methods: Sequence[str] = (),
                wheres: Sequence[str] = ()) -> list[dict]:
    """The runs (as :meth:`Store.runs` lists them) that :func:`matches` keeps; ``wheres`` as typed.
    A key no run has, or one that could be several, is a mistake said in one sentence."""
    if not (runs and (tags or methods or wheres)):
        return runs
    flats = {r["run_id"]: flatten(store.run(r["run_id"])["config"] or {}, "") if wheres else {} for r in runs}
    known = {k for flat in flats.values() for k in flat}
    parsed = [parse_where(w) for w in wheres]
    resolved = [(resolve_key(known, key), value) for key, value in parsed]
    return [r for r in runs if matches(r, flats[r["run_id"]], tags, methods, resolved)]
