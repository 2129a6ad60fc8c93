"""Every command of `facetopt` (walked from the click tree Typer builds) and its options."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import typer.main
from typer.core import TyperGroup, TyperOption

from facetopt.cli.main import app


@dataclass(frozen=True)
class CliCommand:
    path: tuple[str, ...]  # () for the root, ("inspect", "sql") for `facetopt inspect sql`
    command: object  # the click command Typer built

    @property
    def name(self) -> str:
        return " ".join(("facetopt", *self.path))

    @property
    def is_group(self) -> bool:
        return isinstance(self.command, TyperGroup)

    @property
    def options(self) -> list[TyperOption]:
        return [p for p in self.command.params if isinstance(p, TyperOption)]

    @property
    def long_options(self) -> list[str]:
        """Every `--name` the command accepts (both sides of `--x/--no-x`), except --help."""
        names = [n for o in self.options for n in (*o.opts, *o.secondary_opts) if n.startswith("--")]
        return [n for n in names if n != "--help"]


def _walk(command: object, path: tuple[str, ...]) -> Iterator[CliCommand]:
    yield CliCommand(path, command)
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _walk(sub, (*path, name))


def all_commands() -> list[CliCommand]:
    """The root, every group and every sub-command, parents before children."""
    return list(_walk(typer.main.get_command(app), ()))
