"""What the demo's steps share: the way a step announces its command and shows its result, and
the manual prompt edit the optimiser step may revert."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel


class DemoSteps(Protocol):
    def step(self, title: str, argv: list[str]) -> None: ...

    def show(self, kind: str, document: Any) -> None: ...


class PromptChange(BaseModel):
    facet_name: str
    added_sentence: str
    before_sha256: str
    after_sha256: str
    prompt_file: str
