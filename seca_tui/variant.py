"""Which method or ablation a run is, by its name in ``engine.config.VARIANTS`` (``seca w/o SG-AKT``),
for every view that shows a run's method: an ablation must not look like the method it ablates.

The switches are read from the run log's config by SQLite (:data:`SWITCHES_SQL`), so listing ten
thousand runs parses no config; the name of each combination is worked out once.
"""
from __future__ import annotations

from functools import lru_cache

# The config keys by which the variants differ beyond ``method``, as the run log's SQL reads them.
SWITCHES = ("kd", "classifier", "replay")
SWITCH_COLUMNS = tuple(f"_seca_{s}" for s in SWITCHES)  # named once: of_row reads them for every run listed
SWITCHES_SQL = ", ".join(f"json_extract(config, '$.seca.{s}') AS {c}" for s, c in zip(SWITCHES, SWITCH_COLUMNS))


def of_row(row: dict) -> str | None:
    """The variant name of a runs row selected with :data:`SWITCHES_SQL` (those columns are removed)."""
    return name(row.get("method"), *[row.pop(c, None) for c in SWITCH_COLUMNS])


@lru_cache(maxsize=256)
def name(method: str | None, kd: str | None, classifier: str | None, replay: str | None) -> str | None:
    """``VARIANTS``' name of this method and switches; else the method marked ``*`` (switches changed
    from the method's own, e.g. ``seca.kd=mean``); None without a method."""
    if not method:
        return None
    if kd is None and classifier is None and replay is None:
        return method  # a config without the switches (written by hand, imported): nothing to tell apart
    from engine.config import VARIANTS
    from seca_tui.results import method_label  # the one matcher of runs to VARIANTS (results tables)

    label = method_label({"method": method, "config": {"method": method,
                                                       "seca": {"kd": kd, "classifier": classifier, "replay": replay}}})
    by_label = {lbl: key for key, (lbl, _) in VARIANTS.items()}
    return by_label.get(label) or f"{method}*"
