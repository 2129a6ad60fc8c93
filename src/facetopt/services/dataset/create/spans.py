"""The source steps of `dataset create`: query the candidate spans, parse them into facet calls, read
the traces' final facet values (the weak buckets), sample the calls to label, and warn about what the
source held that could not be used. Each step leaves its artifact in the run folder."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from facetopt.clients import artifacts
from facetopt.clients.prompt_file import FacetPrompt, prompt_sha256, write_new_prompt_file
from facetopt.domain.dataset import DatasetCounts, DatasetCreateSummary, FailedRow
from facetopt.domain.spans import FacetCall
from facetopt.errors import InputError, SourceError
from facetopt.facets.data.buckets import assign_weak_buckets
from facetopt.facets.data.parsing import parse_span, span_from_raw, span_root
from facetopt.facets.data.sampling import Sampler
from facetopt.services.backends.sources import SourceQuery, SpanSource
from facetopt.services.dataset.create.request import CreateRequest
from facetopt.services.progress import Progress

SAMPLE_BATCH = 128  # candidates parsed per batch: labelling starts on the first batch's calls


def query_candidates(source: SpanSource, query: SourceQuery, run_dir: Path, progress: Progress) -> list[dict]:
    """The candidate spans (candidates.jsonl) and the SQL that found them (query.sql)."""
    progress.stage(f"querying {source.info.description or source.info.project_name}")
    artifacts.write_text(run_dir / "query.sql", source.candidate_sql(query) + "\n")
    try:
        candidates = list(source.candidates(query))
    finally:  # a paged source (Braintrust) reports every query it actually sent
        _rewrite_sent_sql(run_dir / "query.sql", source.sent_sql())
    artifacts.write_jsonl(run_dir / "candidates.jsonl", candidates)
    if not candidates and query.root_span_ids:
        ids = query.root_span_ids
        raise SourceError(
            f"none of the {len(ids)} root span ids given matched a facet span of the source "
            f"(first: {ids[0]!r})",
            hint="check the ids (root span ids of traces holding facet LLM spans of --source-model); "
            "with root span ids the time window is not applied; the query is in "
            + str(run_dir / "query.sql"),
        )
    bad_created, example = source.bad_created()
    if not candidates and bad_created:
        raise SourceError(
            f"no facet spans matched the source query, and {bad_created} source spans have a `created`"
            f" that is not a timestamp (e.g. {example!r}): no time window selects them",
            hint="fix `created` in the export (ISO 8601, e.g. 2025-03-03T08:01:40Z), or select the traces"
            " by id with --root-span-id-file (no time window applies)",
        )
    if not candidates:
        raise SourceError(
            "no facet spans matched the source query",
            hint="widen --created-after-sql, check --source-model, or drop --extra-where-sql; the query is in "
            + str(run_dir / "query.sql"),
        )
    return candidates


def candidate_roots(candidates: list[dict]) -> list[str]:
    """The traces of the candidate spans, newest first, once each (what the final facets are read for)."""
    roots = (span_root(raw) for raw in candidates)
    return list(dict.fromkeys(root for root in roots if root is not None))


def read_final_facets(
    source: SpanSource, root_ids: list[str], run_dir: Path, progress: Progress
) -> list[dict]:
    """The traces' final facet values (final_facets.jsonl), which give the weak buckets."""
    progress.stage(f"reading final facet values for {len(root_ids)} traces")
    artifacts.write_text(run_dir / "facets_query.sql", source.final_facets_sql(root_ids) + "\n")
    try:
        final_rows = source.final_facets(root_ids) if root_ids else []
    finally:
        _rewrite_sent_sql(run_dir / "facets_query.sql", source.sent_facets_sql())
    artifacts.write_jsonl(run_dir / "final_facets.jsonl", final_rows)
    return final_rows


class Selection:
    """Parse the candidates, give each call its weak bucket (its trace's final facet value) and
    sample, a batch of candidates at a time: `batches()` yields the calls each batch selected, so
    labelling can start on the newest while older candidates are still being parsed. Sampling walks
    the calls newest first and never looks back, so the calls selected are the same as when every
    candidate is parsed first (`drain`)."""

    def __init__(self, req: CreateRequest, candidates: list[dict], final_facets: dict[str, dict]):
        self.req, self.candidates, self.final_facets = req, candidates, final_facets
        self.calls: list[FacetCall] = []
        self.parse_failures: list[dict] = []
        self.without_ids = 0
        self.selected: list[FacetCall] = []
        self.bucket_sources = {"final_facet": 0, "production_output": 0}
        self._sampler = Sampler(req.positive_limit, req.negative_limit, req.query.root_span_ids is None)
        self._parsed = 0  # candidates taken so far

    def batches(self) -> Iterator[list[FacetCall]]:
        while self._parsed < len(self.candidates):
            part = self.candidates[self._parsed : self._parsed + SAMPLE_BATCH]
            self._parsed += len(part)
            calls, failures, without_ids = _parse(part, self.req.facet_name)
            self.calls += calls
            self.parse_failures += failures
            self.without_ids += without_ids
            for source, count in assign_weak_buckets(calls, self.final_facets).items():
                self.bucket_sources[source] += count
            chosen = self._sampler.take(calls)
            self.selected += chosen
            yield chosen

    def drain(self) -> list[FacetCall]:
        for _ in self.batches():
            pass
        return self.selected


def finish_selection(
    selection: Selection, final_rows: list[dict], run_dir: Path, summary: DatasetCreateSummary
) -> list[FacetCall]:
    """Parse and sample what is left, then check and report it (before labelling with --facet-name,
    whose calls must all share one prompt): parsed_calls.jsonl, facet_prompt.yaml, the counts and
    the warnings about what the source held that could not be used. Returns the selected calls."""
    req, selected = selection.req, selection.drain()
    calls = selection.calls
    if req.facet_name:
        _one_prompt_per_name(calls, req.facet_name)
    summary.rows_without_ids = req.source.rows_without_ids + selection.without_ids
    summary.skipped_source_lines = req.source.skipped_lines
    summary.skipped_source_line_reasons = dict(req.source.skipped_line_reasons)
    bad_created, example = req.source.bad_created()
    if bad_created and not req.query.root_span_ids:
        summary.warnings.append(
            f"{bad_created} source span{'' if bad_created == 1 else 's'} {'has' if bad_created == 1 else 'have'}"
            f" a `created` that is not a timestamp (e.g. {example!r}):"
            " no time window selects them"
        )
    summary.weak_bucket_sources = dict(selection.bucket_sources)
    artifacts.write_jsonl(run_dir / "parsed_calls.jsonl", calls)
    prompts = _prompts(selected or calls)
    write_new_prompt_file(run_dir / "facet_prompt.yaml", prompts)
    summary.prompt_hashes = {p.facet_name: p.prompt_sha256 for p in prompts}
    summary.weak_bucket_counts = counts_by_facet(calls, "weak_bucket")
    summary.counts = DatasetCounts(
        candidates=len(selection.candidates),
        final_facets=len(final_rows),
        parsed_calls=len(calls),
        parse_failures=len(selection.parse_failures),
        selected_calls=len(selected),
    )
    report_source_problems(summary, selection.parse_failures)
    return selected


def report_source_problems(summary: DatasetCreateSummary, parse_failures: list[dict]) -> None:
    summary.failed_rows = [
        FailedRow(id=f["id"], facet_name="", reason=f"parse: {f['reason']}") for f in parse_failures
    ]
    fallback = summary.weak_bucket_sources.get("production_output", 0)
    if fallback:
        summary.warnings.append(
            f"{fallback} calls had no final facet value: their weak bucket came from the production output"
        )
    screened = summary.skipped_source_line_reasons
    for reason, count in screened.items():
        summary.warnings.append(f"{_lines(count)} {reason} and skipped")
    not_json = summary.skipped_source_lines - sum(screened.values())
    if not_json:
        summary.warnings.append(f"{_lines(not_json)} not JSON and skipped")
    if summary.rows_without_ids:
        summary.warnings.append(
            f"{summary.rows_without_ids} source rows had no string id/root_span_id and were skipped"
        )
    if parse_failures:
        summary.warnings.append(f"{len(parse_failures)} spans could not be parsed (see failed_rows)")


def _parse(candidates: list[dict], explicit: str | None) -> tuple[list[FacetCall], list[dict], int]:
    calls, failures, without_ids = [], [], 0
    for raw in candidates:
        span = span_from_raw(raw)
        if span is None:
            without_ids += 1
            continue
        try:
            calls.extend(parse_span(span, explicit))
        except ValueError as exc:
            failures.append({"id": span.id, "reason": str(exc)})
    return calls, failures, without_ids


def _one_prompt_per_name(calls: list[FacetCall], facet_name: str) -> None:
    """--facet-name names every call; calls of different facet prompts under one name would mix facets."""
    hashes = Counter(prompt_sha256(c.prompt_text) for c in calls)
    if len(hashes) > 1:
        shown = ", ".join(f"{sha[:12]} ({n} calls)" for sha, n in hashes.most_common(4))
        raise InputError(
            f"--facet-name {facet_name!r} would name calls of {len(hashes)} different facet prompts: {shown}",
            hint="drop --facet-name (each call is named by its own prompt), or narrow the spans to one facet "
            "with --extra-where-sql or --root-span-id",
        )


def _prompts(calls: list[FacetCall]) -> list[FacetPrompt]:
    """One prompt per facet: the newest call's prompt (calls arrive newest first)."""
    chosen: dict[str, FacetCall] = {}
    for call in calls:
        chosen.setdefault(call.facet_name.lower(), call)
    return [
        FacetPrompt(
            facet_name=c.facet_name,
            prompt_sha256=prompt_sha256(c.prompt_text),
            messages=c.template_messages,
            suffix_messages=[c.suffix_messages],
        )
        for c in chosen.values()
    ]


def counts_by_facet(calls: list[FacetCall], attr: str) -> dict:
    per: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for c in calls:
        per[c.facet_name][getattr(c, attr) or "unknown"] += 1
    overall: Counter[str] = Counter()
    for counter in per.values():
        overall.update(counter)
    return {"overall": dict(overall), "per_facet": {k: dict(v) for k, v in sorted(per.items())}}


def _lines(count: int) -> str:
    return f"{count} source line was" if count == 1 else f"{count} source lines were"


def _rewrite_sent_sql(path: Path, text: str) -> None:
    if text:
        artifacts.write_text(path, text + "\n")
