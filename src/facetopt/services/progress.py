"""How services report progress without knowing who listens."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def stage(self, message: str) -> None: ...

    def start(self, task: str, total: int) -> None: ...

    def advance(self, task: str, amount: int = 1) -> None: ...

    def finish(self, task: str) -> None: ...


def show_detail(progress: Progress, task: str, text: str) -> None:
    """Show `text` (rate, 429s, slow calls) beside the task's bar, when the display can."""
    detail = getattr(progress, "detail", None)
    if callable(detail):
        detail(task, text)


class SilentProgress:
    def stage(self, message: str) -> None:
        pass

    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, task: str, amount: int = 1) -> None:
        pass

    def finish(self, task: str) -> None:
        pass
