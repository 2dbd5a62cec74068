"""``seca-tui results``: runs grouped over trials, each metric as mean ± std (seca_tui/results.py)."""
from __future__ import annotations

from typing import List, Optional

import typer

from engine.config import ConfigError
from seca_tui import results
from seca_tui.cli import command, _store
from seca_tui.store import Store

SelectorsArg = typer.Argument(None, metavar="RUN...", help="Runs (ids, names or unique prefixes); default: all runs.")
TagOpt = typer.Option(None, "--tag", metavar="TAG", help="Only runs with this tag.")
SweepOpt = typer.Option(None, "--sweep", metavar="NAME", help="Only the runs of this sweep (tag sweep:NAME).")
GroupOpt = typer.Option(None, "--group-by", metavar="KEY,...",
                        help="Config keys to group by (e.g. method,seca.kd); default: the keys that differ, "
                             "except trial and seed.")


def select_runs(store: Store, refs: Optional[List[str]], tag: Optional[str] = None,
                sweep: Optional[str] = None) -> list[dict]:
    """The runs (as ``Store.run`` gives them) that the selectors name, oldest first; all unarchived
    runs without any. Selecting nothing is a mistake."""
    if refs:
        ids = list(dict.fromkeys(store.resolve(r) for r in refs))
    else:
        ids = [r["run_id"] for r in reversed(store.runs())]
    chosen = [store.run(r) for r in ids]
    wanted = [t for t in (tag, f"sweep:{sweep}" if sweep else None) if t]
    chosen = [r for r in chosen if all(t in r["tags"] for t in wanted)]
    if not chosen:
        what = " and ".join(f"tag '{t}'" for t in wanted) or "the log"
        raise ConfigError(f"No runs match {what}; `seca-tui runs` lists the runs.")
    return chosen


def parse_keys(text: Optional[str]) -> list[str] | None:
    """``"method,seca.kd"`` → ``["method", "seca.kd"]``; ``None`` stays ``None`` (the default grouping)."""
    if text is None:
        return None
    return [k.strip() for k in text.split(",") if k.strip()]


@command(name="results")
def results_cmd(
    run_refs: Optional[List[str]] = SelectorsArg,
    tag: Optional[str] = TagOpt,
    sweep: Optional[str] = SweepOpt,
    group_by: Optional[str] = GroupOpt,
    metrics: str = typer.Option(",".join(results.METRICS), "--metrics", metavar="M,...",
                                help="Which of last, avg, forgetting, bwt, in this order."),
    fmt: str = typer.Option("table", "--format", help="table, markdown, latex, csv or json."),
) -> None:
    """Runs grouped over trials: one row per group, each metric as mean ± std (ddof=1) with n."""
    if fmt not in results.FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(results.FORMATS)}, not '{fmt}'.")
    chosen = select_runs(_store(), run_refs, tag, sweep)
    wanted = parse_keys(metrics)
    groups = results.group_runs(chosen, parse_keys(group_by), wanted)
    typer.echo(results.render(groups, fmt, wanted).rstrip("\n"))
