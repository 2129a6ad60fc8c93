"""A rich progress display on stderr that services drive through the Progress protocol."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from facetopt.cli.output import stderr


class RichProgress:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def stage(self, message: str) -> None:
        if self.enabled:
            stderr.print(f"[dim]>[/dim] {message}", highlight=False)

    def start(self, task: str, total: int) -> None:
        if not self.enabled:
            return
        if self._bars is None:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[detail]}", style="dim"),
                console=stderr,
                transient=False,
            )
            self._bars.start()
        self._tasks[task] = self._bars.add_task(task, total=total, detail="")

    def advance(self, task: str, amount: int = 1) -> None:
        if self._bars is not None and task in self._tasks:
            self._bars.advance(self._tasks[task], amount)

    def detail(self, task: str, text: str) -> None:
        if self._bars is not None and task in self._tasks:
            self._bars.update(self._tasks[task], detail=text)

    def finish(self, task: str) -> None:
        if self._bars is not None and task in self._tasks:
            self._bars.stop()
            self._bars = None
            self._tasks.clear()
