"""Braintrust misbehaving under facetopt's own requests: hung and dying log writes, slow REST calls,
replies of the wrong shape. The real SDK drives the loopback fake; deadlines are short."""

from __future__ import annotations

import logging
import time

import pytest
from pydantic import SecretStr

from facetopt.clients import braintrust as bt
from facetopt.clients.braintrust import http, waiting
from facetopt.clients.braintrust.flush import FlushDeadlineError
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import BraintrustError, UploadVerificationError
from tests.fakes.braintrust_server import FakeBraintrust

pytestmark = pytest.mark.usefixtures("fast_retries")


@pytest.fixture
def fake():
    with FakeBraintrust() as server:
        server.freeze_limit_s = 5.0
        yield server


@pytest.fixture
def conn(fake: FakeBraintrust) -> bt.BraintrustConnection:
    return bt.connect(SecretStr(fake.api_key), app_url=fake.url)


@pytest.fixture
def notices(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """The waiting notices the CLI would print, reported after 0.2 s instead of 3 s."""
    monkeypatch.setattr(waiting, "NOTE_AFTER_S", 0.2)
    monkeypatch.setattr(waiting, "NOTE_EVERY_S", 0.5)
    caplog.set_level(logging.INFO, logger=waiting.LOGGER)
    return caplog


def rows(n: int) -> list[DatasetRow]:
    return [
        DatasetRow(id=f"row-{i:03d}", input={"facet_name": "task"}, expected=f"label {i}", metadata={})
        for i in range(n)
    ]


def test_a_hung_log_write_ends_at_the_flush_deadline_and_nothing_more_is_sent(fake, conn, notices):
    fake.freeze("/logs3", method="POST")

    started = time.monotonic()
    with pytest.raises(FlushDeadlineError) as caught:
        bt.upload_rows(conn, "facet-datasets", "facets", rows(12), flush_deadline=1.0)
    waited = time.monotonic() - started

    assert waited < 3.0  # the deadline (1 s), not the request timeout (30 s) or the SDK's retries
    message = caught.value.message
    assert "did not take the rows written to dataset 'facets' within the flush deadline (1s" in message
    assert "none of the 12 rows had been sent" in message
    assert "facetopt dataset upload --run-dir" in caught.value.hint
    assert any("waiting for Braintrust to take 12 dataset row(s)" in n for n in notices.messages)
    assert http.abandoned()
    sent = len(fake.requests)
    time.sleep(0.3)
    assert len(fake.requests) == sent  # abandoned: the SDK's threads send nothing more

    fake.clear_faults()
    again = bt.connect(SecretStr(fake.api_key), app_url=fake.url)  # a new login starts afresh
    assert not http.abandoned()
    assert bt.upload_rows(again, "facet-datasets", "facets", rows(12), flush_deadline=5.0).verified == 12


def test_a_log_write_whose_connection_dies_is_retried_a_bounded_number_of_times_quietly(fake, conn, capfd):
    fake.die("/logs3", times=None, method="POST")

    with pytest.raises(UploadVerificationError) as caught:
        bt.upload_rows(conn, "facet-datasets", "facets", rows(5), flush_deadline=10.0)

    assert caught.value.message.startswith("5 of 5 rows did not arrive in Braintrust dataset 'facets'")
    # one flush: 4 attempts by facetopt's adapter (retry.py), none added by the SDK on top
    assert len(fake.requests_to("/logs3", "POST")) == 4
    err = capfd.readouterr().err
    assert "Sleeping for" not in err and "Retrying request" not in err and "log request failed" not in err


def test_a_slow_sql_call_times_out_within_its_deadline_and_says_so(fake, conn, notices, monkeypatch):
    project = fake.create_project("production")
    monkeypatch.setenv("FACETOPT_BT_TIMEOUT", "0.4")
    monkeypatch.setenv("FACETOPT_BT_DEADLINE", "1.0")
    fake.freeze("/btql", method="POST")

    started = time.monotonic()
    with pytest.raises(BraintrustError) as caught:
        list(bt.fetch_source_spans(conn, project["id"], ["m"], "NOW() - INTERVAL 1 DAY", "NOW()"))
    waited = time.monotonic() - started

    sent = len(fake.requests_to("/btql"))
    assert waited < 4.0  # the 1 s deadline (plus load), not 4 x 30 s
    assert 2 <= sent <= 3  # 0.4 s attempts until the 1 s deadline
    assert caught.value.message == (
        f"the Braintrust API at {conn.api_url} was reachable but timed out (no answer within 0.4s) "
        f"while running a SQL query ({sent} attempts)"
    )
    assert any("still waiting for Braintrust (POST /btql, attempt" in n for n in notices.messages)


def test_an_experiment_creation_failing_four_times_says_four_attempts(fake, conn):
    project = fake.create_project("evals")
    fake.fail("/v1/experiment", 503, times=None, method="POST")

    with pytest.raises(BraintrustError) as caught:
        bt.api.call(
            conn,
            "creating an experiment",
            lambda c: c.experiments.post_experiment(body={"project_id": project["id"], "name": "x"}),
        )

    assert len(fake.requests_to("/v1/experiment", "POST")) == 4
    assert caught.value.message.endswith("it answered HTTP 503 on all 4 attempts")


@pytest.mark.parametrize(
    ("reshape", "problem"),
    [
        (lambda reply: {k: v for k, v in reply.items() if k != "data"}, "`data` is missing"),
        (lambda reply: {**reply, "data": "x"}, "`data` is not what it should be"),
        (lambda reply: [reply], "the reply is list, not an object"),
    ],
)
def test_a_btql_page_of_the_wrong_shape_is_an_error_naming_the_route(fake, conn, reshape, problem):
    project = fake.create_project("production")
    fake.reshape("/btql", reshape)

    with pytest.raises(BraintrustError) as caught:
        list(bt.fetch_source_spans(conn, project["id"], ["m"], "NOW() - INTERVAL 1 DAY", "NOW()"))

    assert caught.value.message.startswith("Braintrust's reply to POST /btql (a SQL query) cannot be used: ")
    assert problem in caught.value.message


def test_reshaped_lists_and_dataset_pages_are_errors_not_empty_results(fake, conn):
    project = fake.create_project("evals")
    fake.create_experiment(project["id"], "baseline")
    dataset = fake.create_dataset(project["id"], "facets")

    fake.reshape("/v1/experiment", lambda reply: {"items": reply.get("objects")}, method="GET")
    with pytest.raises(
        BraintrustError, match=r"reply to GET /v1/experiment \(listing experiments\).*`objects` is missing"
    ):
        bt.list_experiments(conn, project["id"])

    fake.clear_faults()
    assert [e["name"] for e in bt.list_experiments(conn, project["id"])] == ["baseline"]

    fake.reshape(f"/v1/dataset/{dataset['id']}/fetch", lambda reply: {"cursor": None})
    with pytest.raises(
        BraintrustError, match=r"fetch \(reading the dataset\) cannot be used: `events` is missing"
    ):
        bt.fetch_dataset_events(conn, dataset["id"])


def test_a_login_reply_without_organizations_is_an_error_naming_the_route(fake):
    fake.reshape("/api/apikey/login", lambda reply: {"user": "someone"})

    with pytest.raises(BraintrustError) as caught:
        bt.connect(SecretStr(fake.api_key), app_url=fake.url)

    assert caught.value.message.startswith(
        f"Braintrust's reply to POST /api/apikey/login (login at {fake.url})"
    )
    assert "organization list" in caught.value.message
    assert "BRAINTRUST_API_KEY" not in (caught.value.hint or "")  # not the key's fault


def test_publishing_functions_against_a_failing_braintrust_counts_every_attempt(fake, conn):
    from facetopt.clients.braintrust.functions import insert_functions

    fake.fail("/insert-functions", 502, times=None, method="POST")

    with pytest.raises(BraintrustError) as caught:
        insert_functions(conn, [{"slug": "facet-task", "name": "task"}])

    assert len(fake.requests_to("/insert-functions", "POST")) == 4
    assert caught.value.message == (
        "Braintrust kept failing while publishing facet functions: it answered HTTP 502 on all 4 attempts"
    )
