"""Text facetopt prints wraps between words at the console's width: a URL, id or path is never
split (it goes whole on a line of its own), a continued line keeps its indent, a `$ ` command line
stays whole to be copied, and the progress line fits the width without cutting a word."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

import facetopt.cli.shared.progress as progress_module
from facetopt.cli.shared.output import WrappingConsole

URL = "https://www.braintrust.dev/app/acme/p/facets/experiments/0f9e8d7c-6b5a-4321-9fed-cba987654321"
SENTENCE = (
    f"evidence: the prompt was evaluated on validation with real labels; see {URL} for the "
    "experiment, then run the comparison again with the same split and target"
)


def printed(width: int, *texts: str) -> list[str]:
    buffer = io.StringIO()
    console = WrappingConsole(file=buffer, width=width, force_terminal=False)
    for text in texts:
        console.print(text, highlight=False)
    return buffer.getvalue().splitlines()


@pytest.mark.parametrize("width", [40, 60, 80])
def test_a_sentence_wraps_between_words_and_the_url_stays_whole(width: int):
    lines = printed(width, SENTENCE)
    assert " ".join(" ".join(lines).split()) == " ".join(SENTENCE.split())  # same words, same order
    assert URL in lines  # on a line of its own, unsplit
    assert all(len(line) <= width for line in lines if line != URL)
    assert len(lines) > 1


def test_a_continued_line_keeps_its_indent():
    lines = printed(40, "  + " + SENTENCE.replace(URL, "a short link"))
    assert lines[0].startswith("  + ")
    assert all(line.startswith("  ") and len(line) <= 40 for line in lines)


def test_a_command_to_copy_is_left_whole_and_a_quoted_one_moves_whole():
    command = "$ facetopt eval --split validation --target-project acme --dataset facet-groundtruth"
    assert printed(40, command) == [command]
    quoted = "then run `facetopt dataset review apply review.yaml --dry-run` to check"
    lines = printed(60, quoted)
    assert any("`facetopt dataset review apply review.yaml --dry-run`" in line for line in lines)
    assert all(len(line) <= 60 for line in lines)


def test_markup_and_style_survive_wrapping():
    buffer = io.StringIO()
    console = WrappingConsole(file=buffer, width=30, force_terminal=True, color_system="standard")
    console.print("[yellow]warning:[/yellow] " + "word " * 12)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", buffer.getvalue())
    assert plain.splitlines()[0].startswith("warning: word")
    assert "\x1b[33m" in buffer.getvalue()  # yellow kept


@pytest.mark.parametrize("width", [40, 60, 80])
def test_the_progress_line_fits_and_cuts_no_word(monkeypatch, width: int):
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
    monkeypatch.setattr(progress_module, "stderr", console)
    detail = "41.2 calls/s, 3 answered 429, 2 slower than 30 s, retrying after Retry-After"
    bars = progress_module.RichProgress()
    bars.start("labelling", 360)
    bars.advance("labelling", 36)
    bars.detail("labelling", detail)
    bars.finish("labelling")
    line = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", buffer.getvalue()).split("\r")[-1].rstrip("\n")
    assert len(line) <= width and "…" not in line
    assert line.startswith("labelling ") and "36/360" in line
    shown = line.split("0:00:0", 1)[1].split()[1:]  # the words after the elapsed time
    assert shown == detail.split()[: len(shown)]  # whole words, in order, none cut


def test_a_bullets_text_continues_under_its_text():
    lines = printed(40, "  - " + SENTENCE.replace(URL, "a short link"))
    assert lines[0].startswith("  - ")
    assert all(line.startswith("    ") and not line.startswith("     ") for line in lines[1:])


def test_a_table_title_is_printed_above_the_table_wrapped_between_words():
    from rich.table import Table

    title = "label agreement per facet (positive/negative decision)"
    table = Table(title=title)
    table.add_column("facet")
    table.add_column("rows")
    table.add_row("issues", "40")
    buffer = io.StringIO()
    WrappingConsole(file=buffer, width=40, force_terminal=False).print(table)
    lines = buffer.getvalue().splitlines()
    body = next(i for i, line in enumerate(lines) if "facet" in line and "rows" in line)
    above = " ".join(lines[:body]).replace("┏", "").replace("━", "").replace("┳", "").replace("┓", "")
    assert " ".join(above.split()) == title  # every word, in order, none split
    assert all(len(line) <= 40 for line in lines)
    assert table.title == title  # the table itself is left as it was
