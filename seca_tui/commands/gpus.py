"""``seca-tui gpus``: the TUI's GPU panel printed once (utilisation, memory, the runs on each GPU), for a
shell over SSH; ``--json`` for scripts."""
from __future__ import annotations

import dataclasses

import typer

from seca_tui import gpus as gpu_info
from seca_tui.cli import _json, _store, _table, command


@command(name="gpus")
def gpus_cmd(
    as_json: bool = typer.Option(False, "--json", help="One JSON object: the GPUs, each with its runs, and "
                                                        "why NVML cannot be read (null when it can)."),
) -> None:
    """The NVIDIA GPUs here: utilisation, memory used/total and which runs hold each one."""
    monitor = gpu_info.GpuMonitor()
    monitor.sample(_store())
    if as_json:
        _json({"gpus": [dataclasses.asdict(row.gpu) | {"runs": [{"run_id": r["run_id"], "name": r.get("name")}
                                                                 for r in row.runs]} for row in monitor.rows],
               "unavailable": monitor.unavailable})
    elif monitor.unavailable is not None:
        typer.echo(gpu_info.unavailable_line(monitor.unavailable))
    else:
        _table(gpu_info.HEADERS, [gpu_info.cells(row.gpu, row.runs) for row in monitor.rows])
