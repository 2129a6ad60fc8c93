"""The root's commands, loaded when used: `facetopt --help` lists them from a static table of
one-line helps, and a command's module (and the services it imports) loads only when that
command runs or shows its own help. A test keeps the table equal to the commands' own help."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import typer
from typer import _click
from typer.core import TyperCommand

from facetopt.cli.shared.usage_errors import JsonUsageErrors

# name -> the first paragraph of the command's own help, in the order `--help` lists them
SUMMARIES: dict[str, str] = {
    "bootstrap": "Promote a run's facet prompts to the prompt file you edit, and print the line for .env.",
    "eval": "Run the facet model over the dataset (through `bt eval`), score it, and record the experiment.",
    "compare": "Pair two experiments' rows by dataset row id; per facet and overall: deltas, 95% "
    "intervals, McNemar, and a verdict (KEEP, REJECT or INCONCLUSIVE).",
    "report": "Write a recorded comparison as one self-contained HTML page: verdicts, a forest plot "
    "of every delta with its interval, confusion counts, flipped rows, train failures, the prompt diff.",
    "publish": "Publish the prompt file's facets as Braintrust facet functions, once the prompt has evidence.",
    "demo": "Run the whole loop offline on the bundled sample traces with simulated models (no key, "
    "no network).",
    "optimize": "Propose prompt edits from train failures, guard and screen them on train, validate "
    "the winner once.",
    "dataset": "Build ground-truth datasets from production facet spans.",
    "inspect": "Look at experiments, failures, dataset balance and raw SQL.",
}


def _dataset(holder: typer.Typer) -> None:
    from facetopt.cli import dataset, dataset_audit

    if not any(c.name == "audit" for c in dataset.app.registered_commands):
        dataset.app.command("audit")(dataset_audit.audit_command)
        dataset.app.add_typer(dataset_audit.review_app, name="review")
    holder.add_typer(dataset.app, name="dataset")


def _inspect(holder: typer.Typer) -> None:
    from facetopt.cli import inspect, optimize

    if not any(c.name == "optimize" for c in inspect.app.registered_commands):
        inspect.app.command("optimize")(optimize.inspect_optimize_command)
    holder.add_typer(inspect.app, name="inspect")


def _single(name: str, module: str, function: str) -> Callable[[typer.Typer], None]:
    def register(holder: typer.Typer) -> None:
        import importlib

        holder.command(name)(getattr(importlib.import_module(f"facetopt.cli.{module}"), function))

    return register


_SINGLE = {
    "bootstrap": ("bootstrap", "bootstrap_command"),
    "eval": ("eval", "eval_command"),
    "compare": ("compare", "compare_command"),
    "report": ("report", "report_command"),
    "publish": ("publish", "publish_command"),
    "demo": ("demo", "demo_command"),
    "optimize": ("optimize", "optimize_command"),
}
_REGISTER: dict[str, Callable[[typer.Typer], None]] = {
    **{name: _single(name, module, function) for name, (module, function) in _SINGLE.items()},
    "dataset": _dataset,
    "inspect": _inspect,
}
_BUILT: dict[str, _click.Command] = {}


def load(name: str) -> _click.Command:
    """The click command Typer builds for one root command (built once per process)."""
    if name not in _BUILT:
        import typer.main

        holder = typer.Typer(add_completion=False)
        holder.callback()(lambda: None)
        _REGISTER[name](holder)
        group = typer.main.get_command(holder)
        _BUILT[name] = group.commands[name]  # type: ignore[attr-defined]
    return _BUILT[name]


class _LoadedOnUse(Mapping[str, _click.Command]):
    def __getitem__(self, name: str) -> _click.Command:
        if name not in SUMMARIES:
            raise KeyError(name)
        return load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(SUMMARIES)

    def __len__(self) -> int:
        return len(SUMMARIES)


class LazyRoot(JsonUsageErrors):
    """The root group: lists every command from SUMMARIES, loads one only when it is used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LoadedOnUse()  # type: ignore[assignment]
        self._listing = False

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(SUMMARIES)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in SUMMARIES:
            return None
        if self._listing:
            return TyperCommand(cmd_name, help=SUMMARIES[cmd_name])
        return load(cmd_name)

    def format_help(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
