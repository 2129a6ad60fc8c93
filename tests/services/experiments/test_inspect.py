"""inspect services over a registry built by hand: resolution, metrics, failures, dataset, local SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetopt.errors import InputError, NotFoundError
from facetopt.services.experiments.inspect import (
    inspect_dataset,
    inspect_experiments,
    inspect_failures,
    inspect_metrics,
    inspect_sql,
)
from facetopt.services.experiments.registry import Experiments, open_experiments
from facetopt.settings import load_settings
from tests.fakes.braintrust_server import FakeBraintrust
from tests.services import sql_recipes as recipes
from tests.services.experiment_fixtures import (
    baseline_rows,
    dataset_row,
    eval_row,
    record,
    write_store,
)
from tests.services.sql_recipes import by_facet


def open_local(root: Path, **flags) -> Experiments:
    context = open_experiments(load_settings(None, **{"output_root": root, "backend": "local", **flags}))
    return context


@pytest.fixture
def registry(output_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Runs over two days: local demo validation (e1, e2), a local train smoke run (e3), a Braintrust
    run (e4), a run on another dataset (e5) and a run over every split (e6, oldest)."""
    write_store(
        output_root,
        [
            (record("e6", "2024-01-01T00:00:00Z", name="all-splits", split=None), baseline_rows()),
            (record("e1", "2024-01-02T00:00:00Z", name="base"), baseline_rows()),
            (record("e2", "2024-01-03T00:00:00Z", name="edit", model="gpt-x"), baseline_rows()),
            (record("e3", "2024-01-04T00:00:00Z", name="smoke", split="train"), baseline_rows()[8:9]),
            (record("e4", "2024-01-05T00:00:00Z", name="edit", backend="braintrust"), baseline_rows()),
            (record("e5", "2024-01-06T00:00:00Z", name="other", dataset="other"), baseline_rows()),
        ],
    )
    # --backend braintrust reads the project's experiments: a Braintrust without that project yet
    with FakeBraintrust() as fake:
        monkeypatch.setenv("BRAINTRUST_API_KEY", fake.api_key)
        monkeypatch.setenv("BRAINTRUST_APP_URL", fake.url)
        yield output_root


def resolve(root: Path, reference: str, split: str | None = None, model: str | None = None, **flags) -> str:
    with open_local(root, dataset=flags.pop("dataset", "demo"), **flags) as experiments:
        return experiments.resolve(reference, split=split, model=model).experiment_id


# -- resolution ------------------------------------------------------------------------------------


def test_latest_and_previous_follow_backend_dataset_and_split(registry: Path):
    assert resolve(registry, "latest") == "e3"  # the train smoke run is the newest local demo run
    assert resolve(registry, "latest", split="validation") == "e2"
    assert resolve(registry, "previous", split="validation") == "e1"
    assert resolve(registry, "latest", dataset="other") == "e5"
    assert resolve(registry, "latest", backend="braintrust") == "e4"
    assert resolve(registry, "latest", split="validation", model="brain-facet-1") == "e1"
    # a run over every split counts for any split
    assert resolve(registry, "previous", split="train") == "e6"


def test_previous_without_an_earlier_run_says_what_it_looked_for(registry: Path):
    with pytest.raises(NotFoundError) as caught:
        resolve(registry, "previous", backend="braintrust")
    assert "needs 2 complete runs with backend braintrust, dataset 'demo'" in caught.value.message
    assert "project 'Facet Optimizer' and the registry have 1" in caught.value.message


def test_names_pick_the_newest_in_scope_then_anywhere(registry: Path):
    assert resolve(registry, "edit") == "e2"  # local scope preferred over the newer Braintrust run
    assert resolve(registry, "edit", backend="braintrust") == "e4"
    assert resolve(registry, "other") == "e5"  # out of scope but the only one of that name
    assert resolve(registry, "e4") == "e4"  # an id names exactly that run


def test_unknown_experiment_suggests_the_nearest_names(registry: Path):
    with pytest.raises(NotFoundError) as caught:
        resolve(registry, "edti")
    assert caught.value.message == "no experiment named 'edti' in the registry"
    assert "'edit'" in caught.value.hint
    assert "facetopt inspect experiments" in caught.value.hint


def test_empty_registry_is_an_error_with_a_next_step(output_root: Path):
    with pytest.raises(NotFoundError, match="registry is empty") as caught:
        resolve(output_root, "latest")
    assert "facetopt eval" in caught.value.hint


def test_experiments_are_listed_newest_first(registry: Path):
    with open_local(registry) as experiments:
        report = inspect_experiments(experiments)
    assert [r.experiment_id for r in report.experiments] == ["e5", "e4", "e3", "e2", "e1", "e6"]
    with open_local(registry) as experiments:
        assert [
            r.experiment_id for r in inspect_experiments(experiments, backend="braintrust").experiments
        ] == ["e4"]


# -- metrics ---------------------------------------------------------------------------------------


def test_metrics_per_facet_match_hand_counts(registry: Path):
    with open_local(registry, dataset="demo") as experiments:
        report = inspect_metrics(experiments, "base", split="validation")
    issues, sentiment, overall = report.metrics
    # issues: i1-i3 found, i4 missed, i5-i6 right negatives, i7-i8 false alarms
    assert (issues.n, issues.tp, issues.fn, issues.tn, issues.fp) == (8, 3, 1, 2, 2)
    assert issues.binary_decision_match == pytest.approx(5 / 8)
    assert issues.positive_recall == pytest.approx(3 / 4)
    assert issues.negative_specificity == pytest.approx(2 / 4)
    assert issues.precision == pytest.approx(3 / 5)
    assert issues.f1 == pytest.approx(6 / 9)
    assert issues.factuality == pytest.approx((1 + 0.6 + 1 + 0 + 1 + 1 + 0 + 0.4) / 8)
    assert sentiment.sentiment_label_accuracy == pytest.approx(1 / 3)
    assert (overall.facet_name, overall.n) == ("overall", 11)  # the train row t1 is left out


def test_metrics_for_one_facet_and_a_missing_split(registry: Path):
    with open_local(registry, dataset="demo") as experiments:
        one = inspect_metrics(experiments, "base", facet="ISSUES")
        smoke = inspect_metrics(experiments, "smoke", split="validation")
        with pytest.raises(InputError, match="has no facet 'task'") as caught:
            inspect_metrics(experiments, "base", facet="task")
    assert [m.facet_name for m in one.metrics] == ["issues"]
    assert one.metrics[0].n == 9
    assert smoke.metrics == []
    assert "no rows on split validation (its rows: train 1)" in smoke.notes[0]
    assert caught.value.hint == "its facets: issues, sentiment"


def test_errored_rows_are_counted(output_root: Path):
    rows = [
        eval_row("a", "Wrong answer", "", error="timeout"),
        eval_row("b", "none", "", error="HTTP 500"),
        eval_row("c", "none", "none"),
    ]
    write_store(output_root, [(record("x1", "2024-01-01T00:00:00Z"), rows)])
    with open_local(output_root) as experiments:
        metrics = inspect_metrics(experiments, "x1").metrics
        failures = inspect_failures(experiments, "x1", "issues")
    assert metrics[0].errored == 2
    assert {(f.id, f.kind, f.error) for f in failures.failures} == {
        ("a", "fn", "timeout"),
        ("b", "error", "HTTP 500"),
    }


# -- failures --------------------------------------------------------------------------------------


def test_failures_by_kind_on_validation(registry: Path):
    with open_local(registry, dataset="demo") as experiments:
        every = inspect_failures(experiments, "base", "issues")
        false_positives = inspect_failures(experiments, "base", "issues", kind="fp")
        train = inspect_failures(experiments, "base", "issues", split="train")
        labels = inspect_failures(experiments, "base", "Sentiment", kind="label")
    assert [(f.id, f.kind) for f in every.failures] == [("i4", "fn"), ("i7", "fp"), ("i8", "fp")]
    assert every.counts == {"fp": 2, "fn": 1, "label": 0, "error": 0}
    assert (every.rows, every.failure_count, every.matching, every.listed) == (8, 3, 3, 3)
    assert every.experiment_id == every.experiment.experiment_id == "e1"
    assert [f.id for f in false_positives.failures] == ["i7", "i8"]
    assert [f.id for f in train.failures] == ["t1"]
    assert [(f.id, f.expected, f.output) for f in labels.failures] == [
        ("s2", "Negative: angry", "Mixed: angry but calm")
    ]
    first = every.failures[1]
    assert first.permalink == "https://bt.example/trace/i7"
    assert first.factuality == 0.0
    assert first.expected == "none" and first.output == "User asked about billing"
    assert first.trace_text == "trace i7"  # what the facet prompt wrapped and sent to the model
    assert first.permalink_note is None
    assert (false_positives.failure_count, false_positives.matching) == (3, 2)


def test_a_failure_without_a_permalink_says_why(output_root: Path):
    row = eval_row("local1", "none", "Answered the user")
    row.metadata = {"split": "validation", "source_row_id": "span-1"}  # a local export: no org, no project id
    write_store(output_root, [(record("x1", "2024-01-01T00:00:00Z"), [row])])
    with open_local(output_root) as experiments:
        (failure,) = inspect_failures(experiments, "x1", "issues").failures
    assert failure.permalink is None
    assert failure.permalink_note.startswith(
        "no permalink: the source span has no Braintrust org, project id"
    )


def test_failures_limit_keeps_the_total(registry: Path):
    with open_local(registry, dataset="demo") as experiments:
        report = inspect_failures(experiments, "base", "issues", limit=1)
        unlimited = inspect_failures(experiments, "base", "issues", limit=0)
    assert (len(report.failures), report.matching, report.listed, report.failure_count) == (1, 3, 1, 3)
    assert len(unlimited.failures) == 3


def test_failures_reject_bad_input(registry: Path):
    with open_local(registry, dataset="demo") as experiments:
        with pytest.raises(InputError, match="unknown failure kind 'fpp'"):
            inspect_failures(experiments, "base", "issues", kind="fpp")
        with pytest.raises(InputError, match="no facet 'isues'"):
            inspect_failures(experiments, "base", "isues")


def test_failures_latest_means_the_latest_run_on_that_split(registry: Path):
    with open_local(registry, dataset="demo") as experiments:
        report = inspect_failures(experiments, "latest", "issues")
    assert report.experiment.experiment_id == "e2"  # not the newer train smoke run


# -- dataset ---------------------------------------------------------------------------------------


def test_dataset_balance_from_the_local_store(output_root: Path):
    rows = [
        dataset_row("r1", "issues", "Leaked reasoning", "train"),
        dataset_row("r2", "issues", "none", "train"),
        dataset_row("r3", "issues", "none", "validation"),
        dataset_row("r4", "task", "User wants a refund", "validation"),
    ]
    write_store(output_root, [], datasets={("proj", "demo"): rows, ("proj", "old"): rows[:1]})
    with open_local(output_root, dataset="demo", target_project="proj") as experiments:
        report = inspect_dataset(experiments)
    issues, task = report.facets
    assert (issues.rows, issues.positive, issues.negative, issues.train, issues.validation) == (3, 1, 2, 2, 1)
    assert (task.rows, task.positive) == (1, 1)
    assert report.total.rows == 4
    with open_local(output_root, dataset="nope", target_project="proj") as experiments:
        with pytest.raises(NotFoundError, match="no local dataset 'nope'") as caught:
            inspect_dataset(experiments)
    assert "proj/demo (4 rows)" in caught.value.hint


# -- local SQL -------------------------------------------------------------------------------------


@pytest.fixture
def sql_store(output_root: Path) -> Path:
    rows = [
        dataset_row("r1", "issues", "Leaked reasoning", "train"),
        dataset_row("r2", "issues", "none", "validation"),
        dataset_row("r3", "task", "User wants a refund", "validation"),
    ]
    write_store(
        output_root,
        [(record("e1", "2024-01-02T00:00:00Z", name="base"), baseline_rows())],
        datasets={("proj", "demo"): rows},
    )
    return output_root


def run_sql(root: Path, sql: str) -> list[dict]:
    with open_local(root, target_project="proj") as experiments:
        return inspect_sql(experiments, sql).rows


def test_sql_over_a_dataset_with_dotted_paths(sql_store: Path):
    rows = run_sql(
        sql_store,
        "SELECT input.facet_name AS facet, count(*) AS n FROM dataset('demo') "
        "WHERE metadata.split = 'validation' GROUP BY 1 ORDER BY 1",
    )
    assert rows == [{"facet": "issues", "n": 1}, {"facet": "task", "n": 1}]
    tagged = run_sql(sql_store, "SELECT id, tags, expected FROM dataset('proj/demo') WHERE id = 'r1'")
    assert tagged == [
        {"id": "r1", "tags": ["facet-optimizer", "issues", "train"], "expected": "Leaked reasoning"}
    ]


def test_the_original_sql_recipes_answer_on_a_local_experiment(sql_store: Path):
    """Rows stored before experiments were shaped as spans (no dataset_row_id in their metadata)."""
    per_facet = by_facet(run_sql(sql_store, recipes.PER_FACET_BINARY.format(experiment="base")))
    issues, sentiment = per_facet["issues"], per_facet["sentiment"]
    assert issues["n"] == 9 and issues["binary_decision_match"] == pytest.approx(5 / 9)
    assert issues["positive_recall"] == pytest.approx(3 / 4)
    assert issues["negative_specificity"] == pytest.approx(2 / 5)
    assert sentiment["n"] == 3 and sentiment["negative_specificity"] is None
    factuality = by_facet(run_sql(sql_store, recipes.FACTUALITY_BY_FACET.format(experiment="latest")))
    assert factuality["issues"]["factuality"] == pytest.approx(6.0 / 9)
    assert factuality["sentiment"]["factuality"] == pytest.approx(1.6 / 3)
    failed = run_sql(sql_store, recipes.FAILED_ROWS.format(experiment="base", facet="issues"))
    assert sorted((r["dataset_row_id"], r["split"]) for r in failed) == [
        ("i4", "validation"), ("i7", "validation"), ("i8", "validation"), ("t1", "train"),
    ]  # fmt: skip
    i7 = next(r for r in failed if r["dataset_row_id"] == "i7")
    assert (i7["expected"], i7["output"]) == ("none", "User asked about billing")


def test_a_local_experiment_is_shaped_as_braintrust_spans(sql_store: Path):
    spans = run_sql(
        sql_store,
        "SELECT id, span_id, root_span_id, is_root, span_attributes.name AS name, scores "
        "FROM experiment('base') WHERE metadata.dataset_row_id = 'i4' OR input.metadata.dataset_row_id = 'i4'",
    )
    assert len(spans) == 4
    (root,) = [s for s in spans if s["is_root"]]
    assert root["name"] == "eval" and root["id"] == "i4" and root["scores"] is None
    children = {s["name"]: s for s in spans if not s["is_root"]}
    assert set(children) == {"binary_classification_scores", "sentiment_label_correct", "Factuality"}
    assert all(c["root_span_id"] == root["span_id"] != c["span_id"] for c in children.values())
    assert children["binary_classification_scores"]["scores"] == {
        "binary_decision_match": 0.0, "positive_recall": 0.0, "negative_specificity": None,
    }  # fmt: skip
    assert run_sql(sql_store, "SELECT count(*) AS n FROM experiment('base') WHERE is_root") == [{"n": 12}]


def test_sql_errors_are_input_errors_with_the_engine_message(sql_store: Path):
    with pytest.raises(InputError, match="SQL error: .*nope") as caught:
        run_sql(sql_store, "SELECT nope FROM dataset('demo')")
    assert "DuckDB ran:" in caught.value.hint
    with pytest.raises(InputError, match="cannot parse SQL"):
        run_sql(sql_store, "SELECT FROM WHERE")

    with pytest.raises(InputError, match="unsupported SQL: joins"):
        run_sql(sql_store, "SELECT * FROM dataset('demo') a JOIN experiment('base') b ON a.id = b.id")
    with pytest.raises(NotFoundError, match="no local dataset named 'demo2'"):
        run_sql(sql_store, "SELECT id FROM dataset('demo2')")
    with pytest.raises(NotFoundError, match="no experiment named 'bsae'"):
        run_sql(sql_store, "SELECT id FROM experiment('bsae')")
    with pytest.raises(InputError, match="not available on the local backend"):
        run_sql(sql_store, "SELECT id FROM project_logs('p')")


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELEC * FROM dataset('demo')", "it should start with SELECT, not 'SELEC'"),
        (
            "SELECT id FROM dataset('demo') WHERE",
            "line 1, column 36 (at \"SELECT id FROM dataset('demo') WHERE\"): WHERE has no condition",
        ),
        ("SELECT id FROM dataset('demo') WHERE (expected = 'x'", "a '(' is never closed"),
        ("SELECT id FROM dataset('demo') WHERE expected =", "'=' has nothing on one side"),
    ],
)
def test_sql_parse_errors_say_what_is_wrong_with_the_select(sql_store: Path, sql: str, says: str):
    with pytest.raises(InputError) as caught:
        run_sql(sql_store, sql)
    assert says in caught.value.message and "sqlglot" not in caught.value.message
    assert caught.value.hint.startswith("write one SELECT")


def test_metrics_reviewed_reports_on_human_reviewed_rows_only(output_root: Path):
    reviewed = {"decided_by": "human", "decision": "second", "expected": "none", "previous_expected": "x"}
    rows = baseline_rows()
    for row in rows:
        if row.id in ("i5", "i7"):
            row.metadata["review"] = dict(reviewed)
    write_store(output_root, [(record("e1", "2024-01-02T00:00:00Z"), rows)])
    with open_local(output_root, dataset="demo") as experiments:
        everything = inspect_metrics(experiments, "e1", split="validation", facet="issues")
        only = inspect_metrics(experiments, "e1", split="validation", facet="issues", reviewed=True)
    assert everything.rows == 8 and only.rows == 2 and only.reviewed
    (issues,) = only.metrics
    assert (issues.tn, issues.fp, issues.tp, issues.fn) == (1, 1, 0, 0)
    assert any("--reviewed: 2 rows" in note for note in only.notes)
