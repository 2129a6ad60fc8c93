import hashlib

import pytest

from facetopt.domain.dataset import METADATA_KEYS
from facetopt.domain.spans import FacetCall
from facetopt.facets.data.rows import RowContext, build_row, permalink, prompt_sha256

CTX = RowContext(
    source_project="Support bot prod",
    source_project_id="proj-123",
    source_org="Acme Inc",
    ground_truth_model="gpt-5.4",
    generated_at="2025-01-02T03:04:05Z",
)


def make_call(**overrides):
    fields = dict(
        source_row_id="row/1",
        root_span_id="root-1",
        span_id="span-1",
        created="2025-01-01T00:00:00Z",
        source_model="brain-facet-1",
        facet_name="issues",
        messages=[{"role": "user", "content": "Here is the data to analyze:\n\ntrace"}],
        template_messages=[
            {"role": "user", "content": "Here is the data to analyze:\n\n{{preprocessed_text}}"}
        ],
        suffix_messages=[{"role": "user", "content": "List issues."}],
        prompt_text="List issues.",
        preprocessed_text="trace",
        production_output="The bot lied",
        weak_bucket="positive",
        weak_bucket_source="final_facet",
        final_facet_value="The bot lied",
    )
    fields.update(overrides)
    return FacetCall(**fields)


def test_build_row_matches_the_dataset_contract():
    row = build_row(make_call(), "  None - nothing wrong \n", CTX, "validation")
    assert row.id == "row/1:issues"
    assert row.input == {"facet_name": "issues", "preprocessed_text": "trace"}
    assert row.expected == "None - nothing wrong"
    assert tuple(row.metadata) == METADATA_KEYS
    assert row.metadata["facet_prompt_sha256"] == hashlib.sha256(b"List issues.").hexdigest()
    assert row.metadata["source_weak_bucket"] == "positive"
    assert row.metadata["source_facet_value"] == "The bot lied"
    assert row.metadata["production_output"] == "The bot lied"
    assert row.metadata["source_model"] == "brain-facet-1"
    assert row.metadata["ground_truth_model"] == "gpt-5.4"
    assert row.metadata["ground_truth_generated_at"] == "2025-01-02T03:04:05Z"
    assert row.metadata["split"] == "validation"
    assert row.metadata["source_trace_permalink"] == (
        "https://www.braintrust.dev/app/Acme%20Inc/object?object_type=project_logs&object_id=proj-123&id=row%2F1"
    )
    assert row.tags == ["facet-optimizer", "issues", "negative", "validation"]


def test_final_bucket_tag_follows_the_facet_pattern():
    row = build_row(
        make_call(facet_name="competitor"), "No competitor", CTX, "train", no_match_pattern="^no comp"
    )
    assert row.tags == ["facet-optimizer", "competitor", "negative", "train"]
    positive = build_row(
        make_call(facet_name="competitor"), "Langfuse", CTX, "train", no_match_pattern="^no comp"
    )
    assert positive.tags[2] == "positive"


@pytest.mark.parametrize("label", ["", "   ", None])
def test_empty_label_is_never_a_row(label):
    with pytest.raises(ValueError):
        build_row(make_call(), label, CTX, "train")


def test_permalink():
    assert permalink("https://bt.example.com/", "org", "p", "r") == (
        "https://bt.example.com/app/org/object?object_type=project_logs&object_id=p&id=r"
    )
    assert permalink("https://bt.example.com", None, "p", "r") is None
    assert permalink("https://bt.example.com", "", "p", "r") is None


def test_unknown_org_gives_no_permalink_in_the_row():
    ctx = CTX.model_copy(update={"source_org": None})
    assert build_row(make_call(), "x", ctx, "train").metadata["source_trace_permalink"] is None


def test_prompt_sha256():
    assert prompt_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
