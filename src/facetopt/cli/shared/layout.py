"""Tables that fit the console: columns are dropped (and named in a note) rather than cells cut."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | Text


@dataclass(frozen=True)
class Column:
    header: str
    justify: str = "right"
    keep: int = 0  # lower is kept longer; 0 is never dropped


def cell_width(value: Cell) -> int:
    text = value if isinstance(value, Text) else Text.from_markup(value)
    return max((len(line) for line in text.plain.splitlines()), default=0)


def fitted_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    bold_rows: Sequence[int] = (),
) -> tuple[Table, list[str]]:
    """A compact table (one space between columns, no rules) of as many columns as fit the console's
    width whole, and the headers of those left out. No cell is ever shortened."""
    widths = [max([len(c.header), *(cell_width(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    shown = list(range(len(columns)))

    def total() -> int:
        return sum(widths[i] for i in shown) + len(shown) - 1

    droppable = sorted((i for i, c in enumerate(columns) if c.keep), key=lambda i: (-columns[i].keep, -i))
    dropped: list[int] = []
    for index in droppable:
        if total() <= console.width:
            break
        shown.remove(index)
        dropped.append(index)
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)
    for i in shown:
        c = columns[i]
        table.add_column(c.header, justify=c.justify, overflow="fold")  # type: ignore[arg-type]
    for number, row in enumerate(rows):
        table.add_row(*(row[i] for i in shown), style="bold" if number in bold_rows else None)
    return table, [columns[i].header for i in sorted(dropped)]


def print_fitted(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    bold_rows: Sequence[int] = (),
    more: str = "--json",
) -> list[str]:
    """Print a fitted table and, when columns were left out, a note naming them and where they are."""
    table, dropped = fitted_table(console, columns, rows, title=title, bold_rows=bold_rows)
    console.print(table)
    if dropped:
        console.print(
            Text(f"left out at {console.width} columns: {', '.join(dropped)} ({more} has them)", style="dim")
        )
    return dropped
