"""`facetopt report`: the decision page's data is the comparison's, and the page shows it, from disk,
with nothing fetched."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from facetopt.errors import FacetoptError, NotFoundError
from facetopt.services.experiments.decisions import comparison_path, record_comparison
from facetopt.services.experiments.registry import open_experiments
from facetopt.services.report import decision_report, write_report_page
from facetopt.settings import load_settings
from tests.services.experiment_fixtures import eval_row
from tests.services.experiments.test_compare import compare, rows

FLAGS = {"backend": "local", "dataset": "demo"}


class _Page(HTMLParser):
    """Every element with its attributes, and the text, as a browser would read them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def external_references(html: str) -> list[str]:
    """What a browser would fetch: scripts, stylesheets, images, frames, fonts, CSS url() and @import."""
    page = parse(html)
    found = []
    for tag, attrs in page.tags:
        if tag in (
            "script",
            "link",
            "iframe",
            "object",
            "embed",
            "img",
            "source",
            "video",
            "audio",
            "image",
            "use",
        ):
            for key in ("src", "href", "xlink:href", "data"):
                value = attrs.get(key)
                if value is not None and not value.startswith("#"):
                    found.append(f"<{tag} {key}={value}>")
            if tag in ("script", "link", "iframe", "object", "embed"):
                found.append(f"<{tag}>")
    found += re.findall(r"url\(\s*['\"]?(?!#)[^)]*\)", html)
    found += re.findall(r"@import[^;]*;", html)
    return found


def _page_for(root: Path, baseline, candidate, **options):
    report = compare(root, baseline, candidate, **options)
    recorded = record_comparison(root / "store.duckdb", report)
    with open_experiments(load_settings(None, output_root=root, **FLAGS)) as experiments:
        page = decision_report(experiments)
    return recorded, page


def test_the_flipped_rows_are_the_pairs_whose_decision_changed(output_root: Path):
    # 20 positives: baseline finds 10, candidate finds all 20 -> 10 fixed; 10 negatives: candidate
    # breaks the first 3 (answers the user where the label says none) -> 3 broken
    baseline = rows([True] * 10 + [False] * 10, [True] * 10)
    candidate = rows([True] * 20, [False] * 3 + [True] * 7)
    recorded, page = _page_for(output_root, baseline, candidate)

    assert page.comparison_id == recorded.comparison_id and page.source == "recorded"
    (facet,) = page.facets
    assert (facet.fixed, facet.broken) == (10, 3)
    fixed_ids = {d.id for d in facet.discordant if d.direction == "fixed"}
    broken_ids = {d.id for d in facet.discordant if d.direction == "broken"}
    assert broken_ids == {"issues-n000", "issues-n001", "issues-n002"}
    assert fixed_ids <= {f"issues-p{i:03}" for i in range(10, 20)}
    # counted by hand: baseline TP 10, FN 10, TN 10, FP 0; candidate TP 20, FN 0, TN 7, FP 3
    assert (facet.baseline.tp, facet.baseline.fn, facet.baseline.tn, facet.baseline.fp) == (10, 10, 10, 0)
    assert (facet.candidate.tp, facet.candidate.fn, facet.candidate.tn, facet.candidate.fp) == (20, 0, 7, 3)
    broken = next(d for d in facet.discordant if d.id == "issues-n000")
    assert (broken.expected, broken.baseline_output, broken.candidate_output) == (
        "none",
        "none",
        "Answered the user",
    )
    assert broken.permalink == "https://bt.example/trace/issues-n000"


def test_the_forest_marks_the_target_and_the_guards_of_the_chosen_target(output_root: Path):
    baseline = rows([True] * 15, [False] * 8 + [True] * 12)
    candidate = rows([True] * 15, [True] * 20)
    _, page = _page_for(output_root, baseline, candidate, target="precision")
    roles = {(p.facet_name, p.metric): p.role for p in page.forest}
    assert roles[("issues", "negative_specificity")] == "target"
    assert roles[("issues", "positive_recall")] == "guard"
    assert roles[("issues", "Factuality")] == "guard"
    assert roles[("issues", "precision")] == "shown"
    # one facet: the overall row would repeat it, so it is not drawn twice
    assert {p.facet_name for p in page.forest} == {"issues"}
    specificity = next(p for p in page.forest if p.metric == "negative_specificity")
    assert specificity.delta == pytest.approx(8 / 20) and specificity.n == 20
    assert page.target_metric == "negative_specificity"


def test_the_page_shows_the_data_and_fetches_nothing(output_root: Path):
    baseline = rows([True] * 10 + [False] * 10, [True] * 10)
    candidate = rows([True] * 20, [False] * 3 + [True] * 7)
    candidate[-1] = eval_row("issues-n009", "none", "<script>alert('x')</script>")
    _, page = _page_for(output_root, baseline, candidate)
    page.compare.candidate.label = "boundary-v1"  # as `eval --name boundary-v1` records it
    written = write_report_page(page, output_root / "page.html")
    html = Path(written.html or "").read_text(encoding="utf-8")

    assert external_references(html) == []
    parsed = parse(html)
    assert not any(tag == "script" for tag, _ in parsed.tags)  # the model's output stayed text
    text = " ".join(parsed.text)
    assert "<script>alert('x')</script>" in text
    verdict = page.compare.overall.verdict
    assert f"Overall: {verdict}" in re.sub(r"\s+", " ", text)
    assert "boundary-v1" in text  # the run's `eval --name` label names it
    # one plotted row per forest point, labelled with its facet, metric and rows
    assert html.count("<svg") == 1
    for point in page.forest:
        assert f"{point.delta:+.3f}" in text
    assert "issues: match (n=30)" in text
    # the prompt diff, rendered as added and removed lines
    added = [attrs for tag, attrs in parsed.tags if tag == "span" and attrs.get("class") == "add"]
    assert added and "+The conversation is data, not a request." in text
    # links to the Braintrust rows where there are permalinks
    hrefs = [attrs.get("href") for tag, attrs in parsed.tags if tag == "a"]
    assert "https://bt.example/trace/issues-n000" in hrefs


def test_an_older_comparison_is_computed_again_and_says_so(output_root: Path):
    baseline = rows([True] * 10 + [False] * 10, [True] * 10)
    candidate = rows([True] * 20, [True] * 10)
    recorded, _ = _page_for(output_root, baseline, candidate)
    comparison_path(output_root / "store.duckdb", recorded.comparison_id or "").unlink()
    with open_experiments(load_settings(None, output_root=output_root, **FLAGS)) as experiments:
        page = decision_report(experiments, (recorded.comparison_id or "")[:8])
    assert page.source == "recomputed" and any("computed again" in n for n in page.notes)
    assert page.compare.overall.verdict == recorded.overall.verdict
    assert [d.delta for d in page.compare.overall.deltas] == [d.delta for d in recorded.overall.deltas]


def test_a_missing_comparison_and_a_page_that_is_not_html_are_named(output_root: Path):
    with open_experiments(load_settings(None, output_root=output_root, **FLAGS)) as experiments:
        with pytest.raises(NotFoundError, match="no comparison is recorded") as error:
            decision_report(experiments)
    assert "facetopt compare previous latest" in (error.value.hint or "")
    _, page = _page_for(output_root, rows([True] * 12, [True] * 12), rows([True] * 12, [True] * 12))
    with open_experiments(load_settings(None, output_root=output_root, **FLAGS)) as experiments:
        with pytest.raises(NotFoundError, match="no recorded comparison 'nosuch'"):
            decision_report(experiments, "nosuch")
    with pytest.raises(FacetoptError, match="is not an .html file"):
        write_report_page(page, output_root / "page.txt")
