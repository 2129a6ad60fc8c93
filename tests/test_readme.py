"""The documentation keeps its promises: the reference is complete, the README stays a first read.

docs/commands.md documents every command and every option where a reader looks for it. A command
is documented when the page names it (`facetopt inspect sql`); a sub-command also needs a heading
of its own. An option is documented when it appears in a section whose heading names the command
or one of its parent groups (`## facetopt inspect` covers the options every `inspect`
sub-command shares); the root's own options may appear anywhere on the page.

README.md opens with `make demo` and `make test`, stays under 12 KB, walks the workflow's
commands in order, and links into docs/. Every relative link of the README, AGENTS.md and docs/
resolves (file and heading), every page under docs/ can be reached from the README, and every
`facetopt` command line they show names a real command with options it accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_commands import CliCommand, all_commands

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
COMMANDS_MD = DOCS / "commands.md"
README_LIMIT = 12 * 1024
COMMANDS = all_commands()
BY_PATH = {c.path: c for c in COMMANDS}

# The workflow a user follows, in this order, in the README's "The workflow" block.
WORKFLOW = [
    ("dataset", "create"),
    ("inspect", "dataset"),
    ("bootstrap",),
    ("eval",),
    ("inspect", "failures"),
    ("eval",),
    ("compare",),
]


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


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _links(markdown: str) -> list[str]:
    """Relative link targets of a page (outside code), e.g. `docs/models.md#the-simulated-models`."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    targets = re.findall(r"\]\(([^)\s]+)\)", prose)
    return [t for t in targets if not re.match(r"[a-z]+:", t)]


def _resolve(page: Path, target: str) -> tuple[Path, str]:
    path, _, anchor = target.partition("#")
    return ((page.parent / path).resolve() if path else page), anchor


def _command_lines(markdown: str) -> list[str]:
    """Every `facetopt ...` command a page shows: lines of code blocks and inline code spans."""
    found = []
    for block in re.findall(r"```[^\n]*\n(.*?)```", markdown, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)  # shell line continuations
        for line in joined.splitlines():
            line = re.sub(r"^\s*\$\s+", "", line)
            if line.startswith("facetopt "):
                found.append(line)
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    found += [span for span in re.findall(r"`([^`\n]+)`", prose) if span.startswith("facetopt ")]
    return found


def _check_command_line(line: str) -> list[str]:
    """Problems with one shown command: an unknown sub-command, or an option it does not take."""
    text = line.split(" #", 1)[0]
    text = re.sub(r"\"[^\"]*\"|'[^']*'", " ", text)
    text = re.sub(r"[\"'].*$", " ", text)  # a quoted argument that goes on past this line
    words = text.split()[1:]
    path: tuple[str, ...] = ()
    while words and BY_PATH[path].is_group and re.fullmatch(r"[a-z][a-z-]*", words[0]):
        if (*path, words[0]) not in BY_PATH:
            return [f"`{line}`: facetopt has no command `{' '.join((*path, words[0]))}`"]
        path = (*path, words.pop(0))
    accepted = {*BY_PATH[path].long_options, "--help"}
    options = {re.split(r"[=\]|)]", w.lstrip("["))[0] for w in words if w.lstrip("[").startswith("--")}
    return [f"`{line}`: `facetopt {' '.join(path)}` has no option {o}" for o in sorted(options - accepted)]


def _pages() -> list[Path]:
    return [README, ROOT / "AGENTS.md", *sorted(DOCS.glob("*.md"))]


@pytest.fixture(scope="module")
def reference() -> str:
    return COMMANDS_MD.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sections(reference: str) -> list[Section]:
    return _sections(reference)


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def _documenting(command: CliCommand, sections: list[Section], page: str) -> str:
    """The reference text where `command`'s options must be found."""
    if not command.path:
        return page
    prefixes = {command.path[:n] for n in range(1, len(command.path) + 1)}
    return "\n".join(s.text for s in sections if _heading_command(s.heading) & prefixes)


def test_the_walk_finds_the_commands_users_know():
    names = {c.name for c in COMMANDS}
    assert {"facetopt dataset create", "facetopt eval", "facetopt inspect sql", "facetopt compare"} <= names
    assert len(COMMANDS) >= 14


@pytest.mark.parametrize("command", COMMANDS[1:], ids=lambda c: c.name)
def test_every_command_is_in_the_reference(command: CliCommand, reference: str, sections: list[Section]):
    assert re.search(rf"{re.escape(command.name)}(?![\w-])", reference), (
        f"docs/commands.md never names `{command.name}`"
    )
    if not command.is_group:
        assert any(command.path in _heading_command(s.heading) for s in sections), (
            f"docs/commands.md has no heading for `{command.name}`"
        )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_every_option_is_documented_with_its_command(
    command: CliCommand, reference: str, sections: list[Section]
):
    text = _documenting(command, sections, reference)
    missing = [option for option in command.long_options if not _mentions(text, option)]
    assert not missing, f"docs/commands.md sections about `{command.name}` do not mention {missing}"


def test_the_readme_opens_with_make_demo_and_make_test(readme: str):
    before_first_section = readme.split("\n## ", 1)[0]
    block = re.search(r"```[^\n]*\n(.*?)```", before_first_section, re.S)
    assert block, "README must open with a code block holding `make demo` and `make test`"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]


def test_the_readme_stays_a_first_read():
    size = README.stat().st_size
    assert size < README_LIMIT, (
        f"README.md is {size} bytes (limit {README_LIMIT}): move reference text into docs/"
    )


def test_the_readme_walks_the_workflow_in_order(readme: str):
    workflow = next((s for s in _sections(readme) if s.heading.lower().startswith("the workflow")), None)
    assert workflow, "README has no `## The workflow` section"
    shown = []
    for line in _command_lines(workflow.text.split("\n", 1)[1].split("\n## ")[0]):
        words = line.split()[1:]
        path: tuple[str, ...] = ()
        while words and (*path, words[0]) in BY_PATH:
            path = (*path, words.pop(0))
        shown.append(path)
    position = 0
    for step in WORKFLOW:
        assert step in shown[position:], f"README's workflow lost (or reordered) `facetopt {' '.join(step)}`"
        position = shown.index(step, position) + 1


def test_the_readme_links_into_docs(readme: str):
    linked = {_resolve(README, t)[0] for t in _links(readme)}
    assert COMMANDS_MD.resolve() in linked, "README must link to docs/commands.md"
    assert sum(1 for p in linked if p.parent == DOCS.resolve()) >= 3, "README must point into docs/"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_resolves(page: Path):
    broken = []
    for target in _links(page.read_text(encoding="utf-8")):
        path, anchor = _resolve(page, target)
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md":
            anchors = {_slug(s.heading) for s in _sections(path.read_text(encoding="utf-8"))}
            if anchor not in anchors:
                broken.append(target)
    assert not broken, f"{page.name} links to what does not exist: {broken}"


def test_every_docs_page_can_be_reached_from_the_readme():
    reached, todo = set(), [README.resolve()]
    while todo:
        page = todo.pop()
        if page in reached or not page.exists() or page.suffix != ".md":
            continue
        reached.add(page)
        todo += [_resolve(page, t)[0] for t in _links(page.read_text(encoding="utf-8"))]
    orphans = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in reached]
    assert not orphans, f"no link from the README (or a page it reaches) to docs/{orphans}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_shown_exists_with_its_options(page: Path):
    lines = _command_lines(page.read_text(encoding="utf-8"))
    problems = [problem for line in lines for problem in _check_command_line(line)]
    assert not problems, "\n".join(problems)


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


def test_the_checkers_catch_what_they_promise():
    assert _slug('`facetopt inspect sql "<SQL>"`') == "facetopt-inspect-sql-sql"
    assert _slug("Ingest (`bench/bench_ingest.py`)") == "ingest-benchbench_ingestpy"
    assert _check_command_line("facetopt eval --split train --max-rows 50") == []
    assert _check_command_line('facetopt inspect sql "SELECT --x FROM t" --json') == []
    assert _check_command_line("facetopt dataset creat --dry-run")
    assert _check_command_line("facetopt eval --splt train")
    assert _check_command_line("facetopt bootstrap [--run-dir DIR] [--frce]")
    assert _links("see [x](docs/a.md#b) and `[y](z.md)` and [w](https://e.org)") == ["docs/a.md#b"]
