"""What comes after a command: the commands that make sense now, or a stop (ask a person), each with why.

Every `--json` document of dataset create, eval, compare, publish, dataset audit and optimize carries
a `next_steps` list of these; the human output ends with the same in one line (`next: ...`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, model_serializer, model_validator


class NextStep(BaseModel):
    """Either `command` (a facetopt command line, without --json and the flags that say where state
    lives) or `stop` (what to ask a person), and `why`."""

    command: str | None = None
    stop: str | None = None
    why: str

    @model_validator(mode="after")
    def _one_of(self) -> NextStep:
        if (self.command is None) == (self.stop is None):
            raise ValueError("a next step is a command or a stop, not both or neither")
        return self

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: Any) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


def run(command: str, why: str) -> NextStep:
    return NextStep(command=command, why=why)


def stop(what: str, why: str) -> NextStep:
    return NextStep(stop=what, why=why)


def one_line(steps: list[NextStep]) -> str:
    """The human output's last line: `next: <command>; <command>` or `next: stop: <what>`."""
    if not steps:
        return "next: nothing"
    return "next: " + "; ".join(s.command if s.command is not None else f"stop: {s.stop}" for s in steps)
