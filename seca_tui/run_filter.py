"""Which runs a filter keeps: by tag, by method or variant, by config value (``train.lr=1e-3``,
``seca.kd=mean``, or a key's last part alone when only one key ends so: ``lr=1e-3``). One matcher for
``seca-tui runs --where`` and the browser's filter field.

A value is compared in the config's own type: numbers as numbers (``1e-3`` matches ``0.001``),
booleans as YAML reads them (``true``, ``off``), anything else as text.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from engine.config import ConfigError
from seca_tui.export import flat_config

MISSING = object()  # a key a run's config does not have (None is a value: `key: null`)


def parse_where(text: str) -> tuple[str, str]:
    """``"train.lr=1e-3"`` → ``("train.lr", "1e-3")``; a ``config.`` prefix is allowed."""
    key, sep, value = text.partition("=")
    key = key.strip().removeprefix("config.")
    if not sep or not key:
        raise ConfigError(f"A config filter is written key=value (e.g. train.lr=1e-3), not '{text}'.")
    return key, value.strip()


def split_query(text: str) -> tuple[str, list[str]]:
    """The browser's filter field: its ``key=value`` words, and the other words as one search text."""
    words = text.split()
    return " ".join(w for w in words if "=" not in w), [w for w in words if "=" in w]


SEARCHED = ("run_id", "name", "notes", "method", "variant", "dataset")  # and every tag


def search(runs: list[dict], text: str) -> list[dict]:
    """The runs with ``text`` in their id, name, tags, notes, method, variant or dataset, ignoring case."""
    needle = text.casefold()
    if not needle:
        return runs
    # one line per field: a needle (typed on one line) never matches across two of them
    return [run for run in runs if needle in "\n".join(
        [*(str(run.get(key) or "") for key in SEARCHED), *(run.get("tags") or [])]).casefold()]


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


def filter_runs(runs: list[dict], tags: Sequence[str] = (), methods: Sequence[str] = (),
                wheres: Sequence[str] = ()) -> list[dict]:
    """The runs (as ``Store.runs(with_config=True)`` lists them) that :func:`matches` keeps; ``wheres``
    as typed. A key no run has, or one that could be several, is a mistake said in one sentence."""
    if not (runs and (tags or methods or wheres)):
        return runs
    flats = [flat_config(r.get("config_json")) for r in runs]
    known = {k for flat in flats for k in flat} if wheres else set()
    resolved = [(resolve_key(known, key), value) for key, value in map(parse_where, wheres)]
    return [r for r, flat in zip(runs, flats) if matches(r, flat, tags, methods, resolved)]


def differing_keys(runs: Sequence[dict]) -> list[str]:
    """The config keys whose values are not the same in all ``runs`` (a key some lack counts), in the
    order the configs list them: what tells these runs apart. Runs of the same config text count once."""
    flats = [flat_config(text) for text in dict.fromkeys(r.get("config_json") for r in runs)]
    if len(flats) < 2:
        return []
    keys = dict.fromkeys(k for flat in flats for k in flat)
    first = flats[0]
    same = {k for k in keys if k in first}
    for flat in flats[1:]:
        same -= {k for k in same if flat.get(k, MISSING) != first[k]}
        if not same:
            break
    return [k for k in keys if k not in same]
