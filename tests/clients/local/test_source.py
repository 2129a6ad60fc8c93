"""The local span source over NDJSON exports: the filters, order and counts dataset create relies on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import facetopt.clients.local.source as local_source
from facetopt.clients.local.source import LocalSource, load_sample_spans
from facetopt.errors import InputError, SourceError

MODELS = ["brain-facet-latest", "brain-facet-1"]
WINDOW = {"created_after_sql": "NOW() - INTERVAL 7 DAY", "created_before_sql": "NOW() - INTERVAL 1 HOUR"}
NOW = datetime.now(UTC)


def stamp(hours_ago: float) -> str:
    return (NOW - timedelta(hours=hours_ago)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def span(
    row_id: str,
    hours_ago: float,
    model: str = "brain-facet-1",
    kind: str = "llm",
    encode: bool = False,
    root: str | None = None,
    **metadata: str,
) -> dict:
    meta: object = {"model": model, **metadata}
    attributes: object = {"type": kind}
    if encode:  # exports carry some fields as JSON-encoded strings
        meta, attributes = json.dumps(meta), json.dumps(attributes)
    return {
        "id": row_id,
        "span_id": row_id,
        "root_span_id": root or f"root-{row_id}",
        "created": stamp(hours_ago),
        "input": [{"role": "user", "content": "Here is the data to analyze:\n\nUser: hi"}],
        "output": "NONE",
        "metadata": meta,
        "span_attributes": attributes,
    }


ROWS = [
    span("a", 2, tier="enterprise"),
    span("b", 30, model="brain-facet-latest", tier="free"),
    span("c", 24 * 10),  # older than the default window
    span("d", 0.2),  # newer than NOW() - 1 HOUR
    span("e", 3, kind="task"),  # the Topics pipeline's parent span, not the LLM call
    span("f", 3, model="gpt-4o-mini"),  # the bot's own LLM call
    span("g", 5, encode=True, tier="enterprise"),
    {
        "id": "facets-old",
        "root_span_id": "root-a",
        "created": stamp(1.5),
        "facets": {"Task": "old", "SENTIMENT": "Mixed"},
    },
    {
        "id": "facets-new",
        "root_span_id": "root-a",
        "created": stamp(1.2),
        "facets": {"Task": "new", "issues.": "no_match"},
    },
    {
        "id": "facets-b",
        "root_span_id": "root-b",
        "created": stamp(29),
        "facets": json.dumps({"task": "encoded"}),
    },
]
BROKEN = [
    "not json at all",
    '{"id": "h", "root_span_id": "root-h", "input": [{"role": "us',
    json.dumps({k: v for k, v in span("no-id", 2).items() if k != "id"}),
    json.dumps({k: v for k, v in span("no-root", 2).items() if k != "root_span_id"}),
    "",
]


def write_ndjson(path: Path, rows: list, extra_lines: list[str] = ()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in rows] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def source(tmp_path: Path) -> LocalSource:
    return LocalSource([write_ndjson(tmp_path / "spans.jsonl", ROWS, BROKEN)])


def ids(rows) -> list[str]:
    return [row["id"] for row in rows]


def test_default_window_keeps_facet_llm_spans_newest_first(source: LocalSource):
    assert ids(source.fetch_candidates(MODELS, **WINDOW)) == ["a", "g", "b"]


def test_limit_keeps_the_newest(source: LocalSource):
    assert ids(source.fetch_candidates(MODELS, **WINDOW, limit=2)) == ["a", "g"]


def test_model_list_selects_models(source: LocalSource):
    assert ids(source.fetch_candidates(["brain-facet-latest"], **WINDOW)) == ["b"]


def test_time_window_sql_moves_both_bounds(source: LocalSource):
    rows = source.fetch_candidates(MODELS, "NOW() - INTERVAL 30 DAY", "NOW()")
    assert ids(rows) == ["d", "a", "g", "b", "c"]
    since = stamp(10)
    assert ids(source.fetch_candidates(MODELS, f"'{since}'", "NOW() - INTERVAL 1 HOUR")) == ["a", "g"]


def test_extra_where_sees_string_encoded_metadata(source: LocalSource):
    rows = source.fetch_candidates(MODELS, **WINDOW, extra_where_sql="metadata.tier = 'enterprise'")
    assert ids(rows) == ["a", "g"]


def test_root_span_ids_come_oldest_first_without_window_or_limit(source: LocalSource):
    rows = source.fetch_candidates(MODELS, **WINDOW, root_span_ids=["root-a", "root-c", "root-d"], limit=1)
    assert ids(rows) == ["c", "a", "d"]


def test_rows_come_as_the_parser_reads_them(source: LocalSource):
    rows = {row["id"]: row for row in source.fetch_candidates(MODELS, **WINDOW)}
    encoded = rows["g"]
    assert json.loads(encoded["metadata"]) == {"model": "brain-facet-1", "tier": "enterprise"}
    assert json.loads(encoded["span_attributes"]) == {"type": "llm"}
    assert encoded["output"] == "NONE"  # a string value comes back as itself, not as JSON text
    assert json.loads(rows["a"]["input"])[0]["role"] == "user"
    assert rows["a"]["created"] == ROWS[0]["created"]
    assert rows["a"]["root_span_id"] == "root-a" and rows["a"]["span_id"] == "a"


def test_order_holds_across_read_chunks(source: LocalSource, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(local_source, "CHUNK_RANKS", 2)
    rows = source.fetch_candidates(MODELS, "NOW() - INTERVAL 30 DAY", "NOW()")
    assert ids(rows) == ["d", "a", "g", "b", "c"]


def test_a_span_exported_twice_comes_out_once(tmp_path: Path):
    path = write_ndjson(tmp_path / "dup.jsonl", [span("a", 2), span("a", 2), span("b", 3)])
    assert ids(LocalSource([path]).fetch_candidates(MODELS, **WINDOW)) == ["a", "b"]


def test_malformed_lines_and_rows_without_ids_are_counted(source: LocalSource):
    assert source.skipped_lines == 2
    assert source.rows_without_ids == 2
    assert source.rows_read == len(ROWS) + 2


def test_bt_sync_pull_folder_is_read_recursively(tmp_path: Path):
    root = tmp_path / "pull"
    write_ndjson(root / "project_logs_p1" / "f00d" / "data" / "part-000001.jsonl", [span("a", 2)])
    write_ndjson(root / "project_logs_p1" / "f00d" / "data" / "part-000002.jsonl", [span("b", 3)])
    write_ndjson(root / "extra.jsonl", [span("c", 4)])
    write_ndjson(root / "project_logs_p1" / "notes" / "other.jsonl", [span("ignored", 1.5)])
    (root / "project_logs_p1" / "state.json").write_text("{}")
    source = LocalSource([root])
    assert ids(source.fetch_candidates(MODELS, **WINDOW)) == ["a", "b", "c"]
    assert source.skipped_lines == 0


def test_final_facets_keep_key_casing_newest_first_in_one_lookup(source: LocalSource):
    rows = source.fetch_final_facets(["root-a", "root-b", "root-unknown"])
    assert [(r["id"], r["root_span_id"]) for r in rows] == [
        ("facets-new", "root-a"),
        ("facets-old", "root-a"),
        ("facets-b", "root-b"),
    ]
    assert json.loads(rows[0]["facets"]) == {"Task": "new", "issues.": "no_match"}
    assert json.loads(rows[1]["facets"]) == {"Task": "old", "SENTIMENT": "Mixed"}
    assert json.loads(rows[2]["facets"]) == {"task": "encoded"}
    assert source.fetch_final_facets([]) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("metadata.tier = = 'x'", "invalid --extra-where-sql: cannot parse SQL"),
        ("no_such_column = 1", "invalid --extra-where-sql: Binder Error"),
        ("metadata.tier IN (SELECT 1)", "invalid --extra-where-sql: unsupported SQL: subqueries"),
        # pasted as `AND (1=1) OR (1=1)` it would drop every other filter of the query
        (
            "1=1) OR (1=1",
            "invalid --extra-where-sql: cannot parse SQL at line 1, column 4 (at '1=1)'): a ')' without",
        ),
        ("metadata.tier = 'x'; DROP TABLE spans", "invalid --extra-where-sql: unsupported SQL: multiple"),
        ("metadata.tier = 'x' -- )", "invalid --extra-where-sql: unsupported SQL: comments"),
        ("metadata.tier", "invalid --extra-where-sql: not a boolean condition"),
        # only fails while the rows are read
        ("metadata.tier::INT > 3", "invalid --extra-where-sql: Conversion Error"),
    ],
)
def test_bad_extra_where_is_an_input_error(source: LocalSource, extra: str, message: str):
    with pytest.raises(InputError) as caught:
        list(source.fetch_candidates(MODELS, **WINDOW, extra_where_sql=extra))
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message and caught.value.hint


def test_bad_time_bound_names_its_flag(source: LocalSource):
    with pytest.raises(InputError, match="^invalid --created-after-sql: "):
        source.fetch_candidates(MODELS, "'last tuesday'", "NOW()")
    with pytest.raises(InputError, match="^invalid --created-before-sql: "):
        source.fetch_candidates(MODELS, "NOW() - INTERVAL 7 DAY", "NOW() - INTERVAL")


def test_missing_empty_and_spanless_sources_are_source_errors(tmp_path: Path):
    with pytest.raises(SourceError, match="source file not found"):
        LocalSource([tmp_path / "nope.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no span files in folder"):
        LocalSource([tmp_path / "empty"])
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("hello\nworld\n")
    with pytest.raises(SourceError, match="no spans in") as caught:
        LocalSource([garbage])
    assert caught.value.hint


def test_candidate_query_is_the_braintrust_source_query(source: LocalSource):
    expected = """SELECT id, root_span_id, span_id, created, input, output, metadata, span_attributes
FROM project_logs('local')
WHERE span_attributes.type = 'llm'
  AND (metadata.model = 'brain-facet-latest' OR metadata.model = 'brain-facet-1')
  AND created >= NOW() - INTERVAL 7 DAY
  AND created < NOW() - INTERVAL 1 HOUR
  AND (metadata.tier = 'it''s')
ORDER BY created DESC, id DESC
LIMIT 1000"""
    assert (
        source.candidate_query(MODELS, **WINDOW, extra_where_sql="metadata.tier = 'it''s'", limit=1000)
        == expected
    )
    by_ids = source.candidate_query(MODELS, **WINDOW, root_span_ids=["r1", "r'2"], limit=1000)
    assert "  AND root_span_id IN ('r1', 'r''2')\nORDER BY created ASC, id ASC" in by_ids
    assert "INTERVAL" not in by_ids and "LIMIT" not in by_ids


def test_facets_query_text(source: LocalSource):
    assert source.facets_query(["r1", "r2"]) == (
        "SELECT id, root_span_id, span_id, created, facets\n"
        "FROM project_logs('local')\n"
        "WHERE root_span_id IN ('r1', 'r2') AND facets IS NOT NULL\n"
        "ORDER BY created DESC, id DESC"
    )


def test_bundled_sample_is_shifted_into_the_default_window(tmp_path: Path):
    path = load_sample_spans(tmp_path)
    assert path.parent == tmp_path
    stamps = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            stamps.append(datetime.fromisoformat(json.loads(line)["created"].replace("Z", "+00:00")))
        except (ValueError, KeyError, TypeError):
            continue  # the sample's deliberately broken lines
    age = datetime.now(UTC) - max(stamps)
    assert timedelta(hours=2) <= age < timedelta(hours=2, minutes=1)
    assert max(stamps) - min(stamps) > timedelta(days=4)
    source = LocalSource([path])
    candidates = list(source.fetch_candidates(MODELS, **WINDOW))
    assert len({row["root_span_id"] for row in candidates}) >= 270
    assert source.skipped_lines == 3 and source.rows_without_ids == 2


def test_an_oversized_line_and_invalid_utf8_are_skipped_and_counted_by_reason(tmp_path: Path):
    huge = span("huge", 2)  # over DuckDB's 16 MiB object size: read as is, the whole query fails
    huge["metadata"] = {"model": "brain-facet-1", "blob": "x" * (17 * 1024 * 1024)}
    path = write_ndjson(tmp_path / "mixed.jsonl", [span("a", 2), huge, span("b", 3)])
    with path.open("ab") as handle:
        handle.write(b'{"id": "caf\xe9", "root_span_id": "r"}\n')
    source = LocalSource([path])
    assert ids(source.fetch_candidates(MODELS, **WINDOW)) == ["a", "b"]
    assert source.skipped_line_reasons == {"longer than 16 MiB": 1, "not valid UTF-8": 1}
    assert source.skipped_lines == 2 and source.rows_read == 2


def test_spans_whose_created_is_not_a_timestamp_are_counted_with_an_example(tmp_path: Path):
    bad = span("bad", 2)
    bad["created"] = "last tuesday"
    source = LocalSource([write_ndjson(tmp_path / "t.jsonl", [span("a", 2), bad])])
    assert source.bad_created() == (1, "last tuesday")
    assert ids(source.fetch_candidates(MODELS, **WINDOW)) == ["a"]
