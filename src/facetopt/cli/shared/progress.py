"""A rich progress display on stderr that services drive through the Progress protocol."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from facetopt.cli.shared.output import stderr

ELAPSED = 7  # "0:00:12"


def fit_words(text: str, room: int) -> str:
    """The leading whole words of `text` that fit `room` characters (never a cut word)."""
    kept = ""
    for word in text.split():
        candidate = f"{kept} {word}" if kept else word
        if len(candidate) > room:
            break
        kept = candidate
    return kept


class RichProgress:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._bar = 40
        self._room: dict[str, int] = {}  # per task, characters left for the detail beside the bar

    def stage(self, message: str) -> None:
        if self.enabled:
            stderr.print(f"[dim]>[/dim] {message}", highlight=False)

    def start(self, task: str, total: int) -> None:
        if not self.enabled:
            return
        counts = 2 * len(str(total)) + 1
        # the line fits the width whole: the bar gives way first, the detail shows only whole words
        fixed = len(task) + counts + ELAPSED + 5
        if self._bars is None:
            self._bar = max(5, min(40, stderr.width - fixed - 28))
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=self._bar),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[detail]}", style="dim"),
                console=stderr,
                transient=False,
            )
            self._bars.start()
        self._tasks[task] = self._bars.add_task(task, total=total, detail="")
        self._room[task] = stderr.width - fixed - self._bar

    def advance(self, task: str, amount: int = 1) -> None:
        if self._bars is not None and task in self._tasks:
            self._bars.advance(self._tasks[task], amount)

    def detail(self, task: str, text: str) -> None:
        if self._bars is not None and task in self._tasks:
            self._bars.update(self._tasks[task], detail=fit_words(text, self._room[task]))

    def finish(self, task: str) -> None:
        if self._bars is not None and task in self._tasks:
            self._bars.stop()
            self._bars = None
            self._tasks.clear()
