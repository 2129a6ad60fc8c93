"""Building a new prompt file (dataset create, bootstrap): schema_version 1, a header comment that
says what to edit, and every prompt as a `|` block the user can edit by hand."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from facetopt.clients import artifacts
from facetopt.clients.prompt_file.model import SCHEMA_VERSION, FacetPrompt
from facetopt.clients.prompt_file.parse import parse_prompt_text
from facetopt.clients.prompt_file.splice import UNSAFE_CHAR
from facetopt.errors import PromptFileError

HEADER_COMMENT = """\
facetopt prompt file (schema_version 1).
Edit the facet prompt: the `content:` block under suffix_messages. Keep its indentation.
prompt_sha256 is recomputed from that text when the file is loaded; experiments record it.
messages wrap the trace: {{preprocessed_text}} marks where the trace text goes.
Optional per facet: no_match_pattern, a case-insensitive regex for values that mean "no match"."""


def build_prompt_yaml(facets: list[FacetPrompt]) -> str:
    """A new prompt file: schema_version 1, one facet at top level or `facets:`; prompts as `|` blocks."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML(typ="rt")
    yaml.width = 1_000_000  # never fold long lines
    yaml.indent(mapping=2, sequence=2, offset=0)
    top = CommentedMap(schema_version=SCHEMA_VERSION)
    if len(facets) == 1:
        top.update(_facet_tree(facets[0]))
    else:
        top["facets"] = [_facet_tree(f) for f in facets]
    top.yaml_set_start_comment(HEADER_COMMENT)
    out = io.StringIO()
    yaml.dump(top, out)
    # a blank line between the facets of a list, so each reads as its own block
    return re.sub(r"(?<!\nfacets:)\n(- facet_name:)", r"\n\n\1", out.getvalue())


def _facet_tree(facet: FacetPrompt) -> Any:
    from ruamel.yaml.comments import CommentedMap

    tree = CommentedMap()
    tree["facet_name"] = facet.facet_name
    tree["prompt_sha256"] = facet.prompt_sha256
    tree["placeholder"] = facet.placeholder
    tree["messages"] = [_message_tree(m, block_always=False) for m in facet.messages]
    tree["suffix_messages"] = [
        [_message_tree(m, block_always=True) for m in group] for group in facet.suffix_messages
    ]
    if facet.no_match_pattern:
        tree["no_match_pattern"] = facet.no_match_pattern
    return tree


def _message_tree(message: dict[str, Any], block_always: bool) -> Any:
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, LiteralScalarString

    tree = CommentedMap()
    for key, value in message.items():
        if key == "content" and isinstance(value, str):
            if not value.strip() or UNSAFE_CHAR.search(value):
                value = DoubleQuotedScalarString(value)
            elif "\n" in value or block_always:
                value = LiteralScalarString(value)
        tree[key] = value
    return tree


def write_new_prompt_file(path: Path | str, facets: list[FacetPrompt]) -> dict[str, str]:
    """Write a new prompt file atomically (used by dataset create); returns {facet name: prompt_sha256}."""
    path = Path(path)
    text = build_prompt_yaml(facets)
    if facets:
        _, loaded = parse_prompt_text(text, path)
        if [f.model_dump() for f in loaded] != [f.model_dump() for f in facets]:
            raise PromptFileError(f"{path}: the prompt file would not read back the same prompts")
    artifacts.write_bytes(path, text.encode("utf-8"))
    return {f.facet_name: f.prompt_sha256 for f in facets}
