"""The Braintrust client against the loopback fake, through the real braintrust SDK."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from facetopt.clients import braintrust as bt
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import BraintrustError, InputError, NotFoundError, UploadVerificationError
from tests.fakes.braintrust_server import FakeBraintrust

pytestmark = pytest.mark.usefixtures("fast_retries")

MODELS = ["brain-facet-latest", "brain-facet-1"]
AFTER, BEFORE = "NOW() - INTERVAL 7 DAY", "NOW() - INTERVAL 1 HOUR"


@pytest.fixture
def fake():
    with FakeBraintrust() as server:
        yield server


@pytest.fixture
def conn(fake: FakeBraintrust) -> bt.BraintrustConnection:
    return bt.connect(SecretStr(fake.api_key), app_url=fake.url)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def facet_spans(
    n: int, *, model: str = "brain-facet-1", hours_ago: float = 2, prefix: str = "span"
) -> list[dict]:
    """n facet LLM spans, newest first by index; three share each timestamp, so pages split ties."""
    now = datetime.now(UTC)
    return [
        {
            "id": f"{prefix}-{i:05d}",
            "root_span_id": f"trace-{prefix}-{i:05d}",
            "created": iso(now - timedelta(hours=hours_ago, seconds=i // 3)),
            "span_attributes": {"type": "llm", "name": "facet"},
            "metadata": {"model": model},
            "input": [{"role": "user", "content": f"Here is the data to analyze: trace {i}"}],
            "output": "none",
        }
        for i in range(n)
    ]


def newest_first(spans: list[dict]) -> list[str]:
    return [s["id"] for s in sorted(spans, key=lambda s: (s["created"], s["id"]), reverse=True)]


def dataset_rows(n: int, expected: str = "value") -> list[DatasetRow]:
    return [
        DatasetRow(
            id=f"span-{i:04d}:task",
            input={"facet_name": "task", "preprocessed_text": f"trace {i}"},
            expected=f"{expected} {i}",
            metadata={"split": "validation" if i % 5 == 0 else "train", "source_row_id": f"span-{i:04d}"},
            tags=["facet-optimizer", "task", "positive", "train"],
        )
        for i in range(n)
    ]


# ---- source spans ---------------------------------------------------------------------------


@pytest.mark.slow
def test_reads_2500_matching_spans_newest_first_across_pages(fake, conn):
    project = fake.create_project("production")
    matching = facet_spans(2500)
    fake.add_spans(project["id"], matching)
    fake.add_spans(project["id"], facet_spans(40, model="gpt-4o", prefix="other-model"))
    fake.add_spans(project["id"], facet_spans(40, hours_ago=24 * 8, prefix="too-old"))
    fake.add_spans(project["id"], facet_spans(40, hours_ago=0.5, prefix="too-new"))

    fetch = bt.fetch_source_spans(conn, project["id"], MODELS, AFTER, BEFORE)
    ids = [row["id"] for row in fetch]

    assert ids == newest_first(matching)
    assert len(fetch.sql_texts) == 3 and len(fake.requests_to("/btql")) == 3
    assert all("LIMIT 1000" in sql and "ORDER BY created DESC, id DESC" in sql for sql in fetch.sql_texts)
    assert "AND (created < '" in fetch.sql_texts[1]


def test_limit_is_honoured_and_keeps_the_newest(fake, conn):
    project = fake.create_project("production")
    spans = facet_spans(1600)
    fake.add_spans(project["id"], spans)

    fetch = bt.fetch_source_spans(conn, project["id"], MODELS, AFTER, BEFORE, limit=1200)
    ids = [row["id"] for row in fetch]

    assert ids == newest_first(spans)[:1200]
    assert [sql.rsplit("LIMIT ", 1)[1] for sql in fetch.sql_texts] == ["1000", "200"]


def test_root_span_ids_read_oldest_first_without_time_window(fake, conn):
    project = fake.create_project("production")
    old = facet_spans(3, hours_ago=24 * 30, prefix="old")
    recent = facet_spans(3, prefix="recent")
    fake.add_spans(project["id"], old + recent + facet_spans(5, prefix="unasked"))
    wanted = [s["root_span_id"] for s in old + recent]

    fetch = bt.fetch_source_spans(conn, project["id"], MODELS, AFTER, BEFORE, root_span_ids=wanted, limit=1)
    ids = [row["id"] for row in fetch]

    assert ids == list(reversed(newest_first(old + recent)))
    assert "root_span_id IN (" in fetch.sql_texts[0] and "INTERVAL" not in fetch.sql_texts[0]


def test_string_literals_are_quoted_so_odd_model_names_still_match(fake, conn):
    project = fake.create_project("production")
    fake.add_spans(project["id"], facet_spans(4, model="o'brien-facet"))

    rows = list(bt.fetch_source_spans(conn, project["id"], ["o'brien-facet"], AFTER, BEFORE))

    assert len(rows) == 4
    assert "metadata.model = 'o''brien-facet'" in bt.source_query_sql("p", ["o'brien-facet"], AFTER, BEFORE)


def test_final_facets_are_read_in_batches_of_root_span_ids(fake, conn):
    project = fake.create_project("production")
    spans = facet_spans(250)
    finals = [
        {
            "id": f"root-{s['root_span_id']}",
            "root_span_id": s["root_span_id"],
            "facets": {"Task": f"goal {i}"},
        }
        for i, s in enumerate(spans)
    ]
    fake.add_spans(project["id"], spans + finals)
    roots = [s["root_span_id"] for s in spans]

    rows, sql_texts = bt.fetch_final_facets(conn, project["id"], roots, batch=100)

    assert len(sql_texts) == 3
    assert sorted(r["root_span_id"] for r in rows) == sorted(roots)
    assert all(isinstance(r["facets"], dict) for r in rows)


# ---- errors from /btql --------------------------------------------------------------------


def test_sql_error_in_extra_where_shows_the_servers_message(fake, conn):
    project = fake.create_project("production")
    fake.add_spans(project["id"], facet_spans(3))

    with pytest.raises(BraintrustError) as caught:
        list(
            bt.fetch_source_spans(
                conn, project["id"], MODELS, AFTER, BEFORE, extra_where_sql="metdata.user = 'x'"
            )
        )

    assert "unknown field 'metdata.user'" in caught.value.message
    assert "--extra-where-sql" in caught.value.hint


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "1=1) OR (1=1",
            "invalid --extra-where-sql: cannot parse SQL at line 1, column 4 (at '1=1)'): a ')'",
        ),
        ("metadata.user = 'x'; DELETE FROM t", "invalid --extra-where-sql: unsupported SQL: multiple"),
        ("metadata.user IN (SELECT 1)", "invalid --extra-where-sql: unsupported SQL: subqueries"),
    ],
)
def test_an_extra_where_that_is_not_one_condition_is_refused_before_any_query(fake, conn, extra, message):
    project = fake.create_project("production")
    fake.add_spans(project["id"], facet_spans(3))
    with pytest.raises(InputError) as caught:
        list(bt.fetch_source_spans(conn, project["id"], MODELS, AFTER, BEFORE, extra_where_sql=extra))
    assert caught.value.message.startswith(message)
    assert not fake.requests_to("/btql")


def test_a_normal_extra_where_filters_the_braintrust_source(fake, conn):
    project = fake.create_project("production")
    spans = facet_spans(4)
    fake.add_spans(project["id"], spans)
    wanted = spans[0]["root_span_id"]
    rows = list(
        bt.fetch_source_spans(
            conn, project["id"], MODELS, AFTER, BEFORE, extra_where_sql=f"(root_span_id = '{wanted}')"
        )
    )
    assert rows and {r["root_span_id"] for r in rows} == {wanted}


def test_fake_is_strict_about_unfiltered_project_logs_queries(fake, conn):
    project = fake.create_project("production")
    fake.add_spans(project["id"], facet_spans(3))
    unfiltered = f"SELECT id FROM project_logs('{project['id']}') WHERE span_attributes.type = 'llm'"

    with pytest.raises(BraintrustError, match="lint error"):
        bt.btql(conn, unfiltered)
    assert len(bt.btql(conn, unfiltered + " AND created >= NOW() - INTERVAL 1 DAY")["data"]) == 3


def test_fake_pages_at_1000_rows_with_a_cursor(fake, conn):
    project = fake.create_project("production")
    fake.add_spans(project["id"], facet_spans(1200))
    sql = (
        f"SELECT id FROM project_logs('{project['id']}') WHERE created > '2000-01-01' ORDER BY id LIMIT 5000"
    )

    first = bt.btql(conn, sql)
    second = bt.btql(conn, f"{sql} OFFSET '{first['cursor']}'")

    assert len(first["data"]) == 1000 and first["cursor"]
    assert len(second["data"]) == 200 and second["cursor"] is None


def test_rate_limits_are_retried_and_persistent_5xx_is_a_clear_error(fake, conn):
    project = fake.create_project("production")
    fake.add_spans(project["id"], facet_spans(5))
    fake.rate_limit("/btql", times=2, retry_after=0)

    assert len(list(bt.fetch_source_spans(conn, project["id"], MODELS, AFTER, BEFORE))) == 5
    assert len(fake.requests_to("/btql")) == 3

    fake.fail("/btql", 503, times=None)
    with pytest.raises(BraintrustError, match="answered HTTP 503 on all 4 attempts"):
        list(bt.fetch_source_spans(conn, project["id"], MODELS, AFTER, BEFORE))
    assert len(fake.requests_to("/btql")) == 3 + 4


# ---- login, orgs, resolution ------------------------------------------------------------------


def test_rejected_key_is_a_clear_error_without_the_key(fake):
    wrong = "sk-wrong-key-4242424242"
    with pytest.raises(BraintrustError) as caught:
        bt.connect(SecretStr(wrong), app_url=fake.url)

    assert caught.value.message == "Braintrust rejected the API key (401)"
    assert "BRAINTRUST_API_KEY" in caught.value.hint
    assert "4242" not in caught.value.message + caught.value.hint


def test_unreachable_urls_are_named(fake):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with pytest.raises(BraintrustError, match=f"cannot reach Braintrust at {dead}"):
        bt.connect(SecretStr(fake.api_key), app_url=dead)

    conn = bt.connect(SecretStr(fake.api_key), app_url=fake.url, api_url_override=dead)
    assert conn.api_url == dead
    with pytest.raises(BraintrustError, match=f"the Braintrust API at {dead} refused the connection"):
        bt.resolve_project(conn, "production")


def test_project_resolution_by_name_and_id_with_closest_names(fake, conn):
    project = fake.create_project("checkout-assistant")
    fake.create_project("billing-bot")

    assert bt.resolve_project(conn, "checkout-assistant") == bt.Project(project["id"], "checkout-assistant")
    assert bt.resolve_project(conn, project["id"]).name == "checkout-assistant"
    with pytest.raises(NotFoundError) as caught:
        bt.resolve_project(conn, "checkout-asistant")
    assert "'checkout-assistant'" in caught.value.hint and "billing-bot" not in caught.value.hint

    created = bt.resolve_project(conn, "facet-datasets", create=True)
    assert bt.resolve_project(conn, "facet-datasets") == created


def test_source_and_target_orgs_with_different_keys():
    keys = {"sk-source-key-000001": ["acme-prod"], "sk-target-key-000002": ["acme-ml", "acme-prod"]}
    with FakeBraintrust(keys=keys) as fake:
        source = fake.create_project("production", org="acme-prod")
        fake.add_spans(source["id"], facet_spans(7))
        fake.create_project("facet-datasets", org="acme-ml")

        src = bt.connect(SecretStr("sk-source-key-000001"), app_url=fake.url)
        tgt = bt.connect(SecretStr("sk-target-key-000002"), app_url=fake.url, org_name="acme-ml")
        spans = list(
            bt.fetch_source_spans(src, bt.resolve_project(src, "production").id, MODELS, AFTER, BEFORE)
        )
        result = bt.upload_rows(tgt, "facet-datasets", "facets", dataset_rows(len(spans)))

        assert (src.org_name, tgt.org_name) == ("acme-prod", "acme-ml")
        assert result.verified == 7
        with pytest.raises(NotFoundError, match="'facet-datasets' not found in organization 'acme-prod'"):
            bt.resolve_project(src, "facet-datasets")
        with pytest.raises(NotFoundError, match="it can see: acme-prod") as caught:
            bt.connect(SecretStr("sk-source-key-000001"), app_url=fake.url, org_name="acme-ml")
        assert "000001" not in caught.value.message


# ---- uploads --------------------------------------------------------------------------------


def test_upload_verifies_and_reupload_upserts(fake, conn):
    first = bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(40))
    again = bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(40, expected="relabelled"))

    assert (first.written, first.verified, again.verified) == (40, 40, 40)
    assert first.dataset_id == again.dataset_id
    assert len(fake.dataset_rows(first.dataset_id)) == 40
    back = bt.read_dataset_rows(conn, "facet-datasets", "facets")
    assert back == sorted(dataset_rows(40, expected="relabelled"), key=lambda r: r.id)


def test_read_back_keeps_the_newest_version_when_later_pages_repeat_older_ones(fake, conn, monkeypatch):
    from facetopt.clients.braintrust import datasets

    monkeypatch.setattr(datasets, "FETCH_PAGE", 16)
    bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(30))
    again = bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(30, expected="relabelled"))
    assert again.verified == 30  # verification read the stale pages too, and kept the new labels
    pages = list(fake.requests_to(f"/v1/dataset/{again.dataset_id}/fetch", "POST"))
    assert len(fake.stale_dataset_rows(again.dataset_id)) == 30 and len(pages) >= 4
    back = bt.read_dataset_rows(conn, "facet-datasets", "facets")
    assert back == sorted(dataset_rows(30, expected="relabelled"), key=lambda r: r.id)


def test_logs3_failing_twice_then_succeeding_verifies_everything(fake, conn):
    fake.fail_logs3(times=2)

    result = bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(25))

    assert (result.written, result.verified, result.missing_ids) == (25, 25, [])
    assert len(fake.requests_to("/logs3", "POST")) == 3


def test_logs3_failing_always_names_the_missing_count_and_recovers(fake, conn, capsys):
    fake.fail_logs3(times=None)

    with pytest.raises(UploadVerificationError) as caught:
        bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(25))

    assert caught.value.message.startswith("25 of 25 rows did not arrive in Braintrust dataset 'facets'")
    assert "facetopt dataset upload --run-dir" in caught.value.hint
    assert len(caught.value.result.missing_ids) == 25
    assert "Traceback" not in capsys.readouterr().err
    fake.clear_faults()
    assert bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(25)).verified == 25


def test_fake_applies_sdk_merges_and_deletes_and_rejects_bad_writes(fake, conn):
    import braintrust
    import requests

    result = bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(3))
    data = braintrust.init_dataset(project="facet-datasets", name="facets", state=conn.state)
    data.update(id="span-0001:task", metadata={"split": "validation"})
    data.delete("span-0002:task")
    data.flush()

    stored = {row["id"]: row for row in fake.dataset_rows(result.dataset_id)}
    assert sorted(stored) == ["span-0000:task", "span-0001:task"]
    assert stored["span-0001:task"]["metadata"] == {"split": "validation", "source_row_id": "span-0001"}
    assert stored["span-0001:task"]["expected"] == "value 1"
    auth = {"Authorization": f"Bearer {fake.api_key}"}
    row = {"id": "x", "dataset_id": result.dataset_id, "expected": "y"}
    assert requests.post(f"{fake.url}/logs3", data=b'{"rows": [], "api_version": 2}').status_code == 401
    assert (
        requests.post(f"{fake.url}/logs3", json={"rows": [row], "api_version": 1}, headers=auth).status_code
        == 400
    )
    assert (
        requests.post(
            f"{fake.url}/logs3", json={"rows": [{"id": "x"}], "api_version": 2}, headers=auth
        ).status_code
        == 400
    )


def test_large_payloads_go_through_the_sdks_overflow_upload():
    with FakeBraintrust(logs3_payload_max_bytes=3000) as fake:
        conn = bt.connect(SecretStr(fake.api_key), app_url=fake.url)

        rows = dataset_rows(5)
        rows[2].input["preprocessed_text"] = "a long trace " * 400  # one row above the server's limit

        result = bt.upload_rows(conn, "facet-datasets", "facets", rows)

        assert result.verified == 5
        assert fake.requests_to("/logs3/overflow")
        assert bt.read_dataset_rows(conn, "facet-datasets", "facets")[2].input == rows[2].input


# ---- experiments ----------------------------------------------------------------------------


def test_experiment_rows_carry_scores_from_score_spans(fake, conn):
    import braintrust

    bt.upload_rows(conn, "facet-datasets", "facets", dataset_rows(4))
    data = braintrust.init_dataset(project="facet-datasets", name="facets", state=conn.state)

    def exact(input, output, expected):
        return 1.0 if output == expected else 0.0

    def not_applicable(input, output, expected):
        return None

    summary = braintrust.Eval(
        "facet-datasets",
        data=data,
        task=lambda input: "value 1",
        scores=[exact, not_applicable],
        experiment_name="facet-optimizer-brain-facet-1",
        state=conn.state,
    ).summary
    project_id = bt.resolve_project(conn, "facet-datasets").id

    rows = bt.fetch_experiment_rows(conn, summary.experiment_id)

    assert (
        bt.resolve_experiment_id(conn, project_id, "facet-optimizer-brain-facet-1") == summary.experiment_id
    )
    assert [r["id"] for r in rows] == [r.id for r in dataset_rows(4)]
    assert [r["scores"] for r in rows] == [{"exact": float(i == 1), "not_applicable": None} for i in range(4)]
    assert rows[1]["output"] == "value 1" and rows[1]["expected"] == "value 1" and rows[1]["error"] is None
    count = bt.btql(conn, f"SELECT count(*) AS n FROM dataset('{data.id}') WHERE metadata.split = 'train'")
    assert count["data"] == [{"n": 3}]
