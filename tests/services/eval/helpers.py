"""Shared set-up for the eval tests: a small local dataset, a prompt file, an isolated environment."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import FacetPrompt, write_new_prompt_file
from facetopt.domain.dataset import DatasetRow

PROJECT = "support-bot"
DATASET = "facets-ground-truth"
FAIL_MARKER = "ZZ-FAIL-ROW-ZZ"
_ISOLATED_PREFIXES = ("FACET_OPTIMIZER_", "BRAINTRUST_", "OPENAI_", "BT_", "FACETOPT_")

WRAPPER = [
    {"role": "system", "content": "You analyse support conversations."},
    {"role": "user", "content": "Here is the data to analyze:\n{{preprocessed_text}}"},
]
FACETS = [
    FacetPrompt(
        facet_name="Issues",
        messages=WRAPPER,
        suffix_messages=[
            [{"role": "user", "content": "List any issue: no response, leaked reasoning. Else NONE."}]
        ],
    ),
    FacetPrompt(
        facet_name="Sentiment",
        messages=WRAPPER,
        suffix_messages=[
            [{"role": "user", "content": "Give the sentiment: Negative, Neutral, Positive or Mixed."}]
        ],
    ),
]

_TRACES = [
    "User: thanks, that was great help\nAssistant: Glad to help!",
    "User: my login doesn't work, how do I reset it?\nAssistant: Try the reset link.\n"
    "User: that's wrong, it still doesn't work",
    "User: where is my parcel?\nAssistant: (no response)",
    "User: can you change my address?\nAssistant: Done, your address is updated. Thank you!",
]


def make_rows(count: int) -> list[DatasetRow]:
    """`count` rows alternating Issues and Sentiment, every third one in validation."""
    rows = []
    for i in range(count):
        facet = FACETS[i % 2].facet_name
        text = f"{_TRACES[(i // 2) % len(_TRACES)]}\nUser: ticket {i}"
        expected = {
            ("Issues", 0): "NONE",
            ("Issues", 1): "The assistant gave an answer the user said was wrong or did not work.",
            ("Issues", 2): "The assistant gave no response to the user's message.",
            ("Issues", 3): "NONE",
            ("Sentiment", 0): 'Positive - the user expresses appreciation ("thanks")',
            ("Sentiment", 1): 'Negative - the user expresses frustration ("wrong")',
            ("Sentiment", 2): "Neutral - the user asks a question without expressing emotion",
            ("Sentiment", 3): 'Positive - the user expresses appreciation ("thank you")',
        }[(facet, (i // 2) % len(_TRACES))]
        split = "validation" if i % 3 == 0 else "train"
        rows.append(
            DatasetRow(
                id=f"span{i:03d}:{facet.lower()}",
                input={"facet_name": facet, "preprocessed_text": text},
                expected=expected,
                metadata={"split": split, "source_row_id": f"span{i:03d}"},
                tags=["facet-optimizer", facet, split],
            )
        )
    return rows


def seed_local_state(root: Path, rows: list[DatasetRow], facets: list[FacetPrompt] = FACETS) -> Path:
    """A local store holding the dataset, and the prompt file at <root>/facet_definitions.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    with LocalStore(root / "store.duckdb") as store:
        store.upsert_rows(PROJECT, DATASET, rows)
    write_new_prompt_file(root / "facet_definitions.yaml", facets)
    return root


def path_without_bt() -> str:
    """The current PATH minus any folder holding a `bt` executable."""
    folders = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    return os.pathsep.join(p for p in folders if not shutil.which("bt", path=p))


@contextmanager
def isolated_env(cwd: Path, path: str, **extra: str) -> Iterator[pytest.MonkeyPatch]:
    """For module-scoped fixtures (which run before the autouse per-test isolation): a clean
    facetopt environment, `cwd` as the working folder, and `path` as PATH."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(_ISOLATED_PREFIXES):
                patch.delenv(name, raising=False)
        patch.setenv("BRAINTRUST_DISABLE_ATEXIT_FLUSH", "1")
        patch.setenv("PATH", path)
        for name, value in extra.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        yield patch
