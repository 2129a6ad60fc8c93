"""The README documents every command and every option where a reader looks for it.

A command is documented when README.md names it (`facetopt inspect sql`); a sub-command also
needs a heading of its own. An option is documented when it appears in a section whose heading
names the command or one of its parent groups (`## ... facetopt inspect` covers the options every
`inspect` sub-command shares); the root's own options may appear anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_commands import CliCommand, all_commands

README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = all_commands()


@dataclass(frozen=True)
class Section:
    level: int
    heading: str
    text: str  # the heading, its body and its sub-sections


def _sections(markdown: str) -> list[Section]:
    lines = markdown.splitlines()
    headings: list[tuple[int, int, str]] = []  # (line index, level, heading text)
    in_fence = False
    for index, line in enumerate(lines):
        if re.match(r"\s*(```|~~~)", line):
            in_fence = not in_fence
            continue
        match = re.match(r"(#{1,6})\s+(.*)", line)
        if match and not in_fence:
            headings.append((index, len(match.group(1)), match.group(2)))
    sections = []
    for position, (start, level, heading) in enumerate(headings):
        end = next((i for i, lvl, _ in headings[position + 1 :] if lvl <= level), len(lines))
        sections.append(Section(level, heading, "\n".join(lines[start:end])))
    return sections


def _heading_command(heading: str) -> set[tuple[str, ...]]:
    """The commands a heading names: `facetopt inspect metrics [EXPERIMENT]` -> ("inspect", "metrics")."""
    named = set()
    for span in re.findall(r"`facetopt ([^`]*)`", heading):
        words = []
        for word in span.split():
            if not re.fullmatch(r"[a-z][a-z-]*", word):
                break
            words.append(word)
        named.add(tuple(words))
    return named


def _mentions(text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sections(readme: str) -> list[Section]:
    return _sections(readme)


def _documenting(command: CliCommand, sections: list[Section], readme: str) -> str:
    """The README text where `command`'s options must be found."""
    if not command.path:
        return readme
    prefixes = {command.path[:n] for n in range(1, len(command.path) + 1)}
    return "\n".join(s.text for s in sections if _heading_command(s.heading) & prefixes)


def test_the_walk_finds_the_commands_users_know():
    names = {c.name for c in COMMANDS}
    assert {"facetopt dataset create", "facetopt eval", "facetopt inspect sql", "facetopt compare"} <= names
    assert len(COMMANDS) >= 14


def test_the_readme_opens_with_make_demo_and_make_test(readme: str):
    before_first_section = readme.split("\n## ", 1)[0]
    block = re.search(r"```[^\n]*\n(.*?)```", before_first_section, re.S)
    assert block, "README must open with a code block holding `make demo` and `make test`"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]


@pytest.mark.parametrize("command", COMMANDS[1:], ids=lambda c: c.name)
def test_every_command_is_in_the_readme(command: CliCommand, readme: str, sections: list[Section]):
    assert re.search(rf"{re.escape(command.name)}(?![\w-])", readme), f"README never names `{command.name}`"
    if not command.is_group:
        assert any(command.path in _heading_command(s.heading) for s in sections), (
            f"README has no heading for `{command.name}`"
        )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_option_is_documented_with_its_command(
    command: CliCommand, readme: str, sections: list[Section]
):
    text = _documenting(command, sections, readme)
    missing = [option for option in command.long_options if not _mentions(text, option)]
    assert not missing, f"README sections about `{command.name}` do not mention {missing}"


def test_the_section_finder_sees_through_code_fences_and_arguments():
    markdown = (
        "# t\n## A `facetopt inspect`\nshared --json\n```\n# not a heading --fake\n```\n"
        '### `facetopt inspect sql "<SQL>"`\n--limit\n## `facetopt compare BASE CAND`\n--seed\n'
    )
    found = _sections(markdown)
    assert [s.heading for s in found] == [
        "t",
        "A `facetopt inspect`",
        '`facetopt inspect sql "<SQL>"`',
        "`facetopt compare BASE CAND`",
    ]
    sql = CliCommand(("inspect", "sql"), None)
    text = _documenting(sql, found, markdown)
    assert _mentions(text, "--json") and _mentions(text, "--limit") and not _mentions(text, "--seed")
    assert not _mentions("--dataset-project", "--dataset")
