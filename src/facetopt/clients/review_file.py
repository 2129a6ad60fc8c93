"""The label review file: YAML a person edits in any editor, written and read with ruamel.yaml.

Multi-line texts are literal blocks (`|-`), so a trace reads as it was written; `decision` and
`new_value` are left empty (null) for the reviewer to fill in.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from facetopt.clients import artifacts
from facetopt.errors import InputError

HEADER_COMMENT = """\
facetopt label review. For each row, set `decision` to one of:
  keep    the current `expected` is right
  second  the second opinion is right
  new     neither: write the right value in `new_value`
Leave `decision` empty to skip a row. Do not edit `id` or `expected_sha256`.
Then run: facetopt dataset review apply {path} (add --dry-run to see what would change)"""


def _literal(value: Any) -> Any:
    from ruamel.yaml.scalarstring import LiteralScalarString

    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value.replace("\r\n", "\n"))
    return value


def write_review_file(path: Path, header: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    document = CommentedMap()
    for key, value in header.items():
        document[key] = value
    rows = CommentedSeq()
    for entry in entries:
        item = CommentedMap()
        for key, value in entry.items():
            item[key] = _literal(value)
        rows.append(item)
    document["rows"] = rows
    document.yaml_set_start_comment(HEADER_COMMENT.format(path=path.name))
    yaml = YAML()
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    artifacts.write_text(path, buffer.getvalue())


def read_review_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, entries) of a review file; InputError naming the line when it is not valid YAML."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    if not path.is_file():
        raise InputError(
            f"review file not found: {path}", hint="write one with `facetopt dataset review export FILE`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the review file {path}: {exc}", hint="check the path") from None
    try:
        data = YAML(typ="safe").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(
            f"{path} is not valid YAML{where}: {exc.problem}",
            hint="fix the file (indentation and quotes around values with `:`), then apply it again",
        ) from None
    except YAMLError as exc:
        raise InputError(
            f"{path} is not valid YAML: {exc}", hint="fix the file, then apply it again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise InputError(
            f"{path} is not a facetopt review file (no `rows` list)",
            hint="write one with `facetopt dataset review export FILE`",
        )
    rows = data.pop("rows")
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict) or "id" not in row), None)
    if bad is not None:
        raise InputError(f"entry {bad + 1} of {path} has no `id`", hint="do not remove the `id` of an entry")
    return data, rows
