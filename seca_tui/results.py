"""Runs grouped into the rows of a paper's table: each metric as mean ± sample std over trials.

Pure functions over runs as :meth:`Store.run` returns them (dicts with ``config``, ``status`` and
the final metrics). The CLI's ``results``, the TUI's results screen, the figures and the README's
table all group through :func:`group_runs` and format through the ``*_table`` functions here;
none computes a mean of its own.

- Default grouping: the config keys whose values differ between the runs, except those that only
  tell trials apart (``name``, ``description``, ``*.trial``, ``*seed``).
- Only finished (or imported) runs are averaged; the others are counted apart in ``unfinished``.
- std is the sample standard deviation (ddof = 1); ``None`` with fewer than two values.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from engine import config
from seca_tui.export import flatten

METRICS = ("last", "avg", "forgetting", "bwt")
HEADERS = {"last": "Last", "avg": "Avg", "forgetting": "Forgetting", "bwt": "BWT"}
FORMATS = ("table", "markdown", "latex", "csv", "json")
AVERAGED = ("finished", "imported")  # statuses whose final metrics are final
# The config keys by which methods and their ablations differ (engine.config.VARIANTS).
_VARIANT_KEYS = ("method", "seca.kd", "seca.classifier", "seca.replay")


def _not_a_trial_key(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1]
    return key not in ("name", "description") and leaf != "trial" and not leaf.endswith("seed")


def flat_config(run: dict) -> dict[str, Any]:
    """A run's config as dotted keys (``train.lr``), lists and values as stored."""
    return flatten(run.get("config") or {}, "")


def differing_keys(runs: Sequence[dict]) -> list[str]:
    """The config keys whose values are not the same in every run (a key a run lacks counts as
    ``None``), trial and seed keys left out; in key order."""
    flats = [flat_config(r) for r in runs]
    keys = sorted({k for f in flats for k in f})
    return [k for k in keys if _not_a_trial_key(k) and len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]


@functools.lru_cache(maxsize=1)
def _variant_signatures() -> dict[tuple, str]:
    """The values of the variant keys that each of ``engine.config.VARIANTS`` resolves to → its label."""
    signatures = {}
    for label, overrides in config.VARIANTS.values():
        flat = dict(config.parse_override(o) for o in overrides)
        resolved = flatten(config.to_dict(config.from_flat(flat)), "")
        signatures.setdefault(tuple(resolved[k] for k in _VARIANT_KEYS), label)
    return signatures


def method_label(run: dict) -> str:
    """The variant's table label (``SECA w/o SG-AKT``) when the run's method and switches are one of
    ``engine.config.VARIANTS``; otherwise its ``method`` as stored (``-`` when unknown)."""
    flat = flat_config(run)
    label = _variant_signatures().get(tuple(flat.get(k) for k in _VARIANT_KEYS))
    return label or run.get("method") or flat.get("method") or "-"


@dataclass
class Stat:
    """One metric over a group's finished runs."""

    mean: float | None
    std: float | None
    n: int


def stat(values: Iterable[float | None]) -> Stat:
    """Mean and sample std (ddof = 1) of the values that are not ``None``."""
    xs = [float(v) for v in values if v is not None]
    return Stat(statistics.fmean(xs) if xs else None, statistics.stdev(xs) if len(xs) > 1 else None, len(xs))


@dataclass
class Group:
    """One row: the runs sharing ``key`` (the group-by values), their metrics over the finished ones."""

    key: dict[str, Any]
    method: str
    run_ids: list[str]
    finished: list[str]
    unfinished: list[str]
    stats: dict[str, Stat] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.finished)


_RUN_KEYS = ("run_id", "status", "dataset", "split", "n_tasks")  # columns of the run log one may group by too


def _value(run: dict, key: str) -> Any:
    if key in _RUN_KEYS:
        return run.get(key)
    return flat_config(run).get(key.removeprefix("config."))


def group_runs(runs: Sequence[dict], group_by: Sequence[str] | None = None,
               metrics: Sequence[str] = METRICS) -> list[Group]:
    """Group ``runs`` (as :meth:`Store.run` returns them) by the values of ``group_by`` (config keys;
    default :func:`differing_keys`) and give each group mean ± std of ``metrics`` over its finished
    runs. Groups come in the order their first run comes in ``runs``."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise config.ConfigError(f"Unknown metric '{unknown[0]}'; the metrics are {', '.join(METRICS)}.")
    if not metrics:
        raise config.ConfigError(f"Name at least one metric of {', '.join(METRICS)}.")
    keys = list(differing_keys(runs) if group_by is None else group_by)
    known = {k for r in runs for k in flat_config(r)} | set(_RUN_KEYS)
    missing = [k for k in keys if k.removeprefix("config.") not in known]
    if missing:
        raise config.ConfigError(f"No selected run has the config key '{missing[0]}' to group by.")
    groups: dict[str, Group] = {}
    for run in runs:
        key = {k: _value(run, k) for k in keys}
        ident = json.dumps(key, sort_keys=True, default=str)
        label = method_label(run)
        group = groups.get(ident)
        if group is None:
            group = groups[ident] = Group(key, label, [], [], [])
        elif label not in group.method.split(" / "):
            group.method += " / " + label
        group.run_ids.append(run["run_id"])
        (group.finished if run.get("status") in AVERAGED else group.unfinished).append(run["run_id"])
    by_id = {r["run_id"]: r for r in runs}
    for group in groups.values():
        group.stats = {m: stat(by_id[r].get(m) for r in group.finished) for m in metrics}
    return list(groups.values())


def sort_groups(groups: Sequence[Group], metric: str, descending: bool = True) -> list[Group]:
    """Groups by the mean of ``metric``; groups without one last."""
    have = [g for g in groups if g.stats.get(metric) and g.stats[metric].mean is not None]
    rest = [g for g in groups if g not in have]
    return sorted(have, key=lambda g: g.stats[metric].mean, reverse=descending) + rest


@dataclass
class Band:
    """A curve over trials, per task index: mean, sample std (``None`` below two values), min, max,
    and how many curves reach that task."""

    mean: list[float]
    std: list[float | None]
    low: list[float]
    high: list[float]
    n: list[int]


def band(curves: Sequence[Sequence[float | None]]) -> Band:
    """The spread of several curves (A_t of each trial) task by task; a curve shorter than the
    others (a run that ended early) counts where it reaches, a ``None`` point nowhere."""
    out = Band([], [], [], [], [])
    for t in range(max((len(c) for c in curves), default=0)):
        xs = [c[t] for c in curves if t < len(c) and c[t] is not None]
        if not xs:
            break
        s = stat(xs)
        out.mean.append(s.mean)
        out.std.append(s.std)
        out.low.append(min(xs))
        out.high.append(max(xs))
        out.n.append(s.n)
    return out


def group_label(group: Group) -> str:
    """What a legend calls a group: its method, then its other group-by values (``SECA, lr=0.01``)."""
    rest = [f"{k.rsplit('.', 1)[-1]}={plain(v)}" for k, v in group.key.items() if k != "method"]
    return ", ".join([group.method, *rest])


# ----------------------------------------------------------------------------------------- formats

def mean_std(s: Stat, digits: int = 2, pm: str = "±") -> str:
    """``"83.13 ± 0.52"``; the mean alone for one value; ``"-"`` for none."""
    if s.mean is None:
        return "-"
    return f"{s.mean:.{digits}f}" if s.std is None else f"{s.mean:.{digits}f} {pm} {s.std:.{digits}f}"


def plain(value: Any) -> str:
    """A value as a table cell: ``-`` for none, JSON for lists, mappings and booleans."""
    return "-" if value is None else json.dumps(value) if isinstance(value, (bool, list, dict)) else str(value)


def columns(groups: Sequence[Group], metrics: Sequence[str]) -> list[str]:
    """The header people read: method, the group-by keys (but ``method``), n, metrics, unfinished."""
    keys = [k for k in (groups[0].key if groups else {}) if k != "method"]
    return ["method", *keys, "n", *[HEADERS[m] for m in metrics], "unfinished"]


def _cells(group: Group, metrics: Sequence[str], pm: str = "±", escape=str) -> list[str]:
    return [escape(group.method), *[escape(plain(v)) for k, v in group.key.items() if k != "method"], str(group.n),
            *[mean_std(group.stats[m], pm=pm) for m in metrics], str(len(group.unfinished))]


def text_table(groups: Sequence[Group], metrics: Sequence[str] = METRICS) -> str:
    """Left-aligned columns two spaces apart, for a terminal."""
    cells = [columns(groups, metrics), *[_cells(g, metrics) for g in groups]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def markdown_table(groups: Sequence[Group], metrics: Sequence[str] = METRICS) -> str:
    """A GitHub markdown table (what the README's results table is)."""
    head = columns(groups, metrics)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(g, metrics)) + " |" for g in groups]
    return "\n".join(lines)


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(c, c) for c in text)


def latex_table(groups: Sequence[Group], metrics: Sequence[str] = METRICS) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), mean $\\pm$ std."""
    head = columns(groups, metrics)
    rows = [" & ".join(_cells(g, metrics, pm=r"$\pm$", escape=_latex_escape)) + r" \\" for g in groups]
    return "\n".join([r"\begin{tabular}{" + "l" * (len(head) - len(metrics) - 2) + "r" * (len(metrics) + 2) + "}",
                      r"\toprule", " & ".join(_latex_escape(h) for h in head) + r" \\", r"\midrule", *rows,
                      r"\bottomrule", r"\end{tabular}"])


def records(groups: Sequence[Group], metrics: Sequence[str] = METRICS) -> list[dict[str, Any]]:
    """One flat dict per group, for CSV and JSON: the group-by keys, method, n, ``<metric>_mean``,
    ``<metric>_std``, ``<metric>_n``, unfinished, and the run ids."""
    out = []
    for g in groups:
        row: dict[str, Any] = {"method": g.method, **g.key, "n": g.n}
        for m in metrics:
            row.update({f"{m}_mean": g.stats[m].mean, f"{m}_std": g.stats[m].std, f"{m}_n": g.stats[m].n})
        row.update({"unfinished": len(g.unfinished), "runs": g.run_ids})
        out.append(row)
    return out


def csv_table(groups: Sequence[Group], metrics: Sequence[str] = METRICS) -> str:
    """CSV of :func:`records`; the run ids joined by spaces, lists and values as JSON."""
    rows = records(groups, metrics)
    out = io.StringIO()
    head = list(rows[0]) if rows else ["method", "n", *[f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")],
                                       "unfinished", "runs"]
    writer = csv.DictWriter(out, fieldnames=head, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: " ".join(v) if k == "runs" else json.dumps(v) if isinstance(v, (list, dict, bool))
                         else "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def render(groups: Sequence[Group], fmt: str, metrics: Sequence[str] = METRICS) -> str:
    """The groups in one of :data:`FORMATS`."""
    if fmt == "json":
        return json.dumps(records(groups, metrics), indent=2, default=str)
    formatter = {"table": text_table, "markdown": markdown_table, "latex": latex_table, "csv": csv_table}.get(fmt)
    if formatter is None:
        raise config.ConfigError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'.")
    return formatter(groups, metrics)
