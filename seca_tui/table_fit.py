"""A terminal table made to fit a width: whole columns dropped in a given order, then the widest text
column cut with an ellipsis. What a column holds is never cut silently: a dropped column is gone whole."""
from __future__ import annotations

from typing import Any, Sequence

GAP = 2  # spaces between columns, as the CLI's tables print them


def width_of(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """The printed width of a left-aligned table two spaces apart."""
    cells = [list(map(str, r)) for r in [headers, *rows]]
    return sum(max(len(r[i]) for r in cells) for i in range(len(headers))) + GAP * (len(headers) - 1)


def fit(headers: list[str], rows: list[list[Any]], width: int, drop: Sequence[str] = (),
        cut: str | None = None, least: int = 8, then: Sequence[str] = ()) -> tuple[list[str], list[list[Any]]]:
    """``headers`` and ``rows`` without the columns of ``drop`` (in that order) until the table is at
    most ``width`` wide; then the ``cut`` column's cells end in … to fit, down to ``least`` characters;
    then, if it is still too wide, without the columns of ``then``."""
    headers, rows = list(headers), [list(map(str, r)) for r in rows]
    _drop(headers, rows, width, drop)
    over = width_of(headers, rows) - width
    if over > 0 and cut in headers:
        i = headers.index(cut)
        longest = max(len(str(r[i])) for r in [headers, *rows])
        keep = max(least, longest - over)
        for row in rows:
            if len(row[i]) > keep:
                row[i] = row[i][: keep - 1] + "…"
    _drop(headers, rows, width, then)
    return headers, rows


def _drop(headers: list[str], rows: list[list[str]], width: int, names: Sequence[str]) -> None:
    """Remove the columns ``names``, in order, while the table is wider than ``width``."""
    for name in names:
        if width_of(headers, rows) <= width:
            return
        i = headers.index(name)
        headers.pop(i)
        for row in rows:
            row.pop(i)


def share(headers: list[str], rows: list[list[Any]], width: int, least: int = 8) -> tuple[list[str], list[list[Any]]]:
    """A table whose first column is kept and whose other columns (one per run, say) are cut with …
    to equal shares of what is left of ``width``, never below ``least``; as it is when it fits."""
    headers, rows = list(map(str, headers)), [list(map(str, r)) for r in rows]
    if width_of(headers, rows) <= width or len(headers) < 2:
        return headers, rows
    first = max(len(r[0]) for r in [headers, *rows])
    each = max(least, (width - first - GAP * (len(headers) - 1)) // (len(headers) - 1))
    cut = [[c if i == 0 or len(c) <= each else c[: each - 1] + "…" for i, c in enumerate(r)] for r in [headers, *rows]]
    return cut[0], cut[1:]
