"""What the test knows from the actions it took, handed to every invariant check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.stateful.snapshot import Snapshot
from tests.stateful.world import Step, World


@dataclass
class Model:
    human_labels: dict[tuple[str, str], str] = field(default_factory=dict)  # (dataset, id) -> label
    splits: dict[tuple[str, str], str] = field(default_factory=dict)  # (dataset, id) -> split
    eval_exits: dict[str, int] = field(default_factory=dict)  # experiment id -> exit of its command
    resolved: list[tuple[str, str]] = field(default_factory=list)  # (name used, experiment id) this step
    publish: list[dict[str, Any]] = field(default_factory=list)  # this step's publish outcomes
    rerun: tuple[Step, Step] | None = None  # (first, identical second) run of a command this step
    prompts: dict[str, str] = field(default_factory=dict)  # facet -> prompt text before this step


Check = Callable[[World, Model, Snapshot, Snapshot, Step], list[str]]
