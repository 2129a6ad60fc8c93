"""`dataset audit` and `dataset review export|apply` on both backends, through the CLI: the audit finds
the simulated labeller's planted mistakes, a review file fixing two labels changes exactly those
rows (read back from the dataset), and applying it again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from facetopt.clients.prompt_file import load_prompt_file
from facetopt.services.backends import open_backend
from facetopt.services.bootstrap import latest_run_prompt
from facetopt.settings import load_settings
from facetopt.simulation.labeller import labeller_value
from tests.cli.dataset_helpers import json_out, run_cli
from tests.fakes.braintrust_server import FakeBraintrust
from tests.fakes.braintrust_setup import braintrust_env, sample_spans

pytestmark = pytest.mark.usefixtures("fast_retries")
SOURCE, TARGET, DATASET = "checkout-assistant", "facet-datasets", "facet-groundtruth"
LIMITS = ["--positive-limit", "12", "--negative-limit", "12"]
SCOPE = ["--target-project", TARGET, "--dataset", DATASET]


@pytest.fixture(params=["local", "braintrust"])
def dataset(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A labelled dataset on the backend; yields (output root, backend flags, a reader of its rows)."""
    root = tmp_path / "state"
    monkeypatch.chdir(tmp_path)
    if request.param == "local":
        args = ["--backend", "local"]
        created = run_cli("dataset", "create", *SCOPE, *args, "--output-root", str(root), *LIMITS, "--json")
        assert created.exit_code == 0, created.stderr
        yield root, args
        return
    with FakeBraintrust() as fake:
        fake.add_spans(fake.create_project(SOURCE)["id"], sample_spans(tmp_path / "sample"))
        for name, value in braintrust_env(fake).items():
            monkeypatch.setenv(name, value)
        args = ["--backend", "braintrust"]
        created = run_cli(
            "dataset", "create", "--source-project", SOURCE, *SCOPE, *args, "--output-root", str(root), *LIMITS,
            "--json",
        )  # fmt: skip
        assert created.exit_code == 0, created.stderr
        yield root, args


def read_rows(root: Path, args: list[str]) -> dict:
    settings = load_settings(None, backend=args[1], output_root=root)
    return {r.id: r for r in open_backend(settings).dataset_rows(TARGET, DATASET)}


def planted(root: Path, rows: dict) -> set[str]:
    """Rows whose label is not what the trace says (the labeller's planted mistakes)."""
    prompts = {f.facet_name: f.prompt_text for f in load_prompt_file(latest_run_prompt(root)).facets}
    return {
        r.id
        for r in rows.values()
        if labeller_value(r.input["preprocessed_text"], prompts[r.facet_name]) != r.expected
    }


def test_audit_finds_the_planted_mistakes_and_a_review_fixes_exactly_two_labels(dataset, tmp_path: Path):
    root, args = dataset
    where = [*SCOPE, *args, "--output-root", str(root)]
    before = read_rows(root, args)
    wrong = planted(root, before)
    assert 2 <= len(wrong) < len(before) / 5

    too_low = run_cli("dataset", "audit", *where, "--max-cost", "0.0000001")
    assert too_low.exit_code == 1 and "nothing was sent" in too_low.stderr and "--dry-run" in too_low.stderr
    audit = json_out(run_cli("dataset", "audit", *where, "--json"))
    assert audit["kind"] == "self-consistency" and audit["simulated_roles"] == ["labeller", "auditor"]
    # the second opinion's tokens and dollars, as the (simulated) replies reported them
    [usage] = audit["usage"]
    assert usage["role"] == "auditor" and usage["calls"] == audit["labels_paid"] > 0
    assert usage["prompt_tokens"] > 0 and usage["cost_usd"] > 0
    assert {r["id"] for r in audit["disagreeing"]} == wrong
    assert sum(f["rows"] for f in audit["facets"]) == len(before)
    assert all(
        f["kappa"] is not None and f["kappa_low"] <= f["kappa"] <= f["kappa_high"] for f in audit["facets"]
    )
    noisy = [f["facet_name"] for f in audit["facets"] if f["warning"]]
    (step,) = audit["next_steps"]
    if noisy:
        assert step["stop"].startswith("labels look noisy for " + ", ".join(noisy))
    else:
        assert step == {
            "command": "facetopt eval --split validation",
            "why": "the labels hold up: the baseline on validation",
        }
    shown = run_cli("dataset", "audit", *where)
    assert shown.stdout.splitlines()[-1].startswith("next: ")
    again = json_out(run_cli("dataset", "audit", *where, "--json"))
    assert again["labels_paid"] == 0 and again["labels_from_cache"] == len(before)
    assert (again["usage"][0]["calls"], again["usage"][0]["cached_calls"]) == (0, len(before))
    assert again["usage"][0]["cost_usd"] == 0

    review = tmp_path / "review.yaml"
    export = json_out(
        run_cli("dataset", "review", "export", str(review), *where, "--sample-agreeing", "3", "--json")
    )
    assert export["entries"] == len(wrong) + 3 and export["agreeing_sample"] == 3

    yaml = YAML()
    document = yaml.load(review.read_text())
    fixes = [e for e in document["rows"] if e["reason"] == "decision disagreement"][:2]
    assert len(fixes) == 2
    fixes[0]["decision"] = "second"
    fixes[1]["decision"] = "new"
    fixes[1]["new_value"] = "A value a person wrote"
    with review.open("w") as handle:
        yaml.dump(document, handle)
    decided = {fixes[0]["id"]: str(fixes[0]["second_opinion"]), fixes[1]["id"]: "A value a person wrote"}

    dry = json_out(
        run_cli(
            "dataset",
            "review",
            "apply",
            str(review),
            *args,
            "--output-root",
            str(root),
            "--dry-run",
            "--json",
        )
    )
    assert {c["id"] for c in dry["changed"]} == set(decided) and dry["written"] == 0
    assert read_rows(root, args) == before

    applied = json_out(
        run_cli("dataset", "review", "apply", str(review), *args, "--output-root", str(root), "--json")
    )
    assert {c["id"]: c["after"] for c in applied["changed"]} == decided
    assert applied["verified"] == 2 and not applied["conflicts"]
    after = read_rows(root, args)
    assert {i for i in before if before[i] != after[i]} == set(decided)
    for row_id, value in decided.items():
        row, old = after[row_id], before[row_id]
        assert row.expected == value and row.split == old.split and row.id == old.id
        assert row.metadata["review"]["decided_by"] == "human"
        assert row.metadata["review"]["previous_expected"] == old.expected
        assert row.metadata["review"]["decided_at"]
        assert ("positive" in row.tags) != ("negative" in row.tags)
        assert ("positive" in row.tags) == (value.upper() != "NONE")

    repeat = json_out(
        run_cli("dataset", "review", "apply", str(review), *args, "--output-root", str(root), "--json")
    )
    assert repeat["changed"] == [] and repeat["unchanged"] == 2 and repeat["written"] == 0
    assert read_rows(root, args) == after


def test_a_row_changed_since_the_export_is_a_conflict_and_is_not_overwritten(tmp_path: Path, monkeypatch):
    root = tmp_path / "state"
    monkeypatch.chdir(tmp_path)
    where = [*SCOPE, "--backend", "local", "--output-root", str(root)]
    assert (
        run_cli("dataset", "create", *where, "--positive-limit", "5", "--negative-limit", "5").exit_code == 0
    )
    review = tmp_path / "review.yaml"
    assert (
        run_cli("dataset", "review", "export", str(review), *where, "--only", "all", "--json").exit_code == 0
    )
    yaml = YAML()
    document = yaml.load(review.read_text())
    entry = document["rows"][0]
    entry["decision"], entry["new_value"] = "new", "Reviewer's value"
    with review.open("w") as handle:
        yaml.dump(document, handle)

    from facetopt.clients.local.store import LocalStore

    with LocalStore(root / "store.duckdb") as store:
        row = next(r for r in store.read_rows(TARGET, DATASET) if r.id == entry["id"])
        store.upsert_rows(TARGET, DATASET, [row.model_copy(update={"expected": "Changed elsewhere"})])
    report = json_out(
        run_cli("dataset", "review", "apply", str(review), "--output-root", str(root), "--json")
    )
    assert report["changed"] == [] and [c["id"] for c in report["conflicts"]] == [entry["id"]]
    assert read_rows(root, ["--backend", "local"])[entry["id"]].expected == "Changed elsewhere"


def test_bad_decisions_are_one_error_naming_the_entries_and_nothing_is_written(tmp_path: Path):
    review = tmp_path / "review.yaml"
    review.write_text(
        "dataset: d\ntarget_project: p\nbackend: local\nrows:\n"
        "  - {id: a, expected: x, expected_sha256: h, decision: maybe}\n"
        "  - {id: b, expected: x, expected_sha256: h, decision: new}\n"
    )
    result = run_cli("dataset", "review", "apply", str(review), "--output-root", str(tmp_path), "--json")
    assert result.exit_code == 1
    error = json_out(result)["error"]
    assert "entry 1 (a): decision 'maybe'" in error["message"] and "entry 2 (b)" in error["message"]
    assert "nothing was written" in error["hint"]
    assert not (tmp_path / "store.duckdb").exists()


def test_audit_without_a_dataset_says_how_to_make_one(tmp_path: Path):
    result = run_cli("dataset", "audit", *SCOPE, "--backend", "local", "--output-root", str(tmp_path))
    assert result.exit_code == 1
    assert "error: no local dataset" in result.stderr and "hint:" in result.stderr


def test_a_second_opinion_answering_none_everywhere_is_a_broken_audit_not_label_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from tests.fakes.openai_server import FakeOpenAIServer

    root = tmp_path / "state"
    monkeypatch.chdir(tmp_path)
    args = ["--backend", "local", "--output-root", str(root)]
    created = run_cli("dataset", "create", *SCOPE, *args, *LIMITS, "--json")
    assert created.exit_code == 0, created.stderr
    rows = read_rows(root, ["--backend", "local"])
    positives = sum(r.expected.strip().upper() != "NONE" for r in rows.values())
    assert positives >= 10
    monkeypatch.setenv("FACET_OPTIMIZER_AUDIT_API_KEY", "sk-audit-test")
    with FakeOpenAIServer(reply=lambda body: "NONE") as server:
        where = [*SCOPE, *args, "--audit-api-base", server.url, "--second-model", "auditor-x"]
        result = run_cli("dataset", "audit", *where)
        audit = json_out(run_cli("dataset", "audit", *where, "--json"))
    assert result.exit_code == 0, result.stderr
    assert "measure label noise" not in result.stdout + result.stderr
    assert "BROKEN AUDIT" in result.stdout and "broken audit of" in " ".join(result.stderr.split())
    (step,) = audit["next_steps"]  # the auditor is what to fix, not the labels
    assert "is broken" in step["stop"] and "noisy" not in step["stop"]
    broken = [f for f in audit["facets"] if f["broken"]]
    assert len(broken) == len(audit["facets"]) == 3  # a constant NONE: kappa 0 by construction on every facet
    assert all(f["kappa"] is None and "'NONE'" in f["broken"] for f in broken)
    for facet in broken:
        answered = [r for r in rows.values() if r.facet_name == facet["facet_name"]]
        labelled_none = sum(r.expected.strip().upper() == "NONE" for r in answered)
        assert f"on {len(answered)} of {len(answered)} rows (the labels: {labelled_none})" in facet["broken"]


def test_a_constant_second_opinion_on_a_mostly_negative_facet_shows_no_kappa_and_no_noise_warning():
    """Labels mostly NONE, the second opinion NONE everywhere: not broken (it agrees on most rows),
    but kappa is 0 by construction, so none is shown and no label-noise warning is given."""
    from facetopt.domain.audit import AuditedRow
    from facetopt.services.dataset.audit import facet_audit

    rows = [
        AuditedRow(
            id=f"r{i}",
            facet_name="issues",
            expected="A problem" if i < 4 else "NONE",
            second_opinion="NONE",
            expected_positive=i < 4,
            second_positive=False,
            decision_agrees=i >= 4,
        )  # fmt: skip
        for i in range(20)
    ]
    audit = facet_audit("issues", rows)
    assert audit.broken is None and audit.kappa is None and audit.warning is None
    assert "'NONE' on every row: kappa 0 by construction" in (audit.kappa_note or "")
    assert audit.decision_agreement == 16 / 20
