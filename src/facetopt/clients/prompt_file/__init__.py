"""The prompt file (`facet_prompt.yaml` of a run, `facet_definitions.yaml` once promoted).

Users edit this file by hand, so it must survive every round trip exactly as they left it.
A `PromptDocument` keeps the file's text; edits splice new scalars into that text at the
positions the YAML parser reports, so every byte outside the edited scalars stays as it was.

The parts: model (FacetPrompt, its text and hash), parse (reading and validation), splice
(in-place edits), build (new files). Import from this package.
May import: domain, facets, errors, clients.artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetopt.clients import artifacts
from facetopt.clients.prompt_file.build import build_prompt_yaml, write_new_prompt_file
from facetopt.clients.prompt_file.model import FacetPrompt, prompt_sha256, render_messages
from facetopt.clients.prompt_file.parse import parse_prompt_text, read_prompt_file
from facetopt.clients.prompt_file.splice import edited_prompt_text
from facetopt.errors import NotFoundError

__all__ = [
    "FacetPrompt",
    "PromptDocument",
    "build_prompt_yaml",
    "load_prompt_file",
    "prompt_sha256",
    "render_messages",
    "save_prompt_file",
    "write_new_prompt_file",
]


class PromptDocument:
    """A loaded prompt file: its exact text, the ruamel round-trip tree and the validated facets."""

    def __init__(self, path: Path, text: str, data: Any, facets: list[FacetPrompt]):
        self.path = path
        self.text = text
        self.original_text = text
        self.data = data
        self.facets = facets

    @property
    def changed(self) -> bool:
        return self.text != self.original_text

    @property
    def facet_names(self) -> list[str]:
        return [f.facet_name for f in self.facets]

    def _index(self, name: str) -> int:
        for i, facet in enumerate(self.facets):
            if facet.facet_name.lower() == name.strip().lower():
                return i
        raise NotFoundError(
            f"facet {name!r} is not in {self.path}", hint=f"known facets: {', '.join(self.facet_names)}"
        )

    def facet(self, name: str) -> FacetPrompt:
        """The facet of that name, compared case-insensitively."""
        return self.facets[self._index(name)]

    def set_prompt_text(self, facet_name: str, new_text: str) -> FacetPrompt:
        """Replace the facet's prompt (its last suffix message) and its prompt_sha256, in place in the text.

        With several suffix messages only the last is edited; `new_text` may be the whole prompt
        (starting with the earlier messages' text) or just the last message's text.
        """
        index = self._index(facet_name)
        self.text = edited_prompt_text(self.text, self.path, self.facets, index, new_text)
        self.data, self.facets = parse_prompt_text(self.text, self.path)
        return self.facets[index]

    def append_to_prompt(self, facet_name: str, sentence: str) -> FacetPrompt:
        """Add a sentence as a new paragraph at the end of the facet's prompt (trailing newlines kept)."""
        current = self.facet(facet_name).prompt_text
        body = current.rstrip()
        return self.set_prompt_text(facet_name, f"{body}\n\n{sentence.strip()}{current[len(body) :]}")


def load_prompt_file(path: Path | str) -> PromptDocument:
    """Read and validate a prompt file (one facet at top level, or `facets: [...]`)."""
    path = Path(path)
    text, data, facets = read_prompt_file(path)
    return PromptDocument(path, text, data, facets)


def save_prompt_file(doc: PromptDocument, path: Path | str | None = None) -> Path:
    """Write the document's text; an unedited document writes exactly the bytes it was read from."""
    target = Path(path) if path is not None else doc.path
    payload = doc.text.encode("utf-8")
    if not (target.is_file() and target.read_bytes() == payload):
        artifacts.write_bytes(target, payload)
    return target
