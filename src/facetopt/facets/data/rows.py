"""Build a ground-truth dataset row from a labelled facet call."""

from __future__ import annotations

import hashlib
from urllib.parse import quote

from pydantic import BaseModel

from facetopt.domain.dataset import DatasetRow
from facetopt.domain.spans import FacetCall
from facetopt.facets.data.placement import CONVERSATION_KEY, conversation_key
from facetopt.facets.data.text import bucket_of

DEFAULT_APP_URL = "https://www.braintrust.dev"
ROW_TAG = "facet-optimizer"


class RowContext(BaseModel):
    """What every row of one dataset run shares."""

    source_project: str | None = None
    source_project_id: str | None = None
    source_org: str | None = None
    app_url: str = DEFAULT_APP_URL
    ground_truth_model: str
    generated_at: str
    split_seed: str | None = None


def prompt_sha256(text: str) -> str:
    """The prompt version id: sha256 hex of the prompt text (utf-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_id_for(source_row_id: str, facet_name: str) -> str:
    return f"{source_row_id}:{facet_name}"


def permalink(app_url: str | None, org: str | None, project_id: str | None, row_id: str | None) -> str | None:
    """The Braintrust UI link to a source log row; None when the org (or project or row) is unknown."""
    if not org or not project_id or not row_id:
        return None
    base = (app_url or DEFAULT_APP_URL).rstrip("/")
    return (
        f"{base}/app/{quote(org, safe='')}/object?object_type=project_logs"
        f"&object_id={quote(project_id, safe='')}&id={quote(row_id, safe='')}"
    )


def build_row(
    call: FacetCall,
    expected: str,
    ctx: RowContext,
    split: str,
    no_match_pattern: str | None = None,
) -> DatasetRow:
    """A dataset row with the id, input, metadata keys and tags the original scripts wrote.

    Raises ValueError when the label is empty: an empty reply is a failed row, never a label.
    """
    label = (expected or "").strip()
    if not label:
        raise ValueError("empty ground-truth label")
    final_bucket = bucket_of(label, no_match_pattern)
    metadata = {
        "source_project": ctx.source_project,
        "source_project_id": ctx.source_project_id,
        "source_org": ctx.source_org,
        "source_model": call.source_model,
        "source_root_span_id": call.root_span_id,
        "source_span_id": call.span_id,
        "source_row_id": call.source_row_id,
        "source_created": call.created,
        "source_weak_bucket": call.weak_bucket,
        "source_facet_value": call.final_facet_value,
        "source_trace_permalink": permalink(
            ctx.app_url, ctx.source_org, ctx.source_project_id, call.source_row_id
        ),
        "production_output": call.production_output,
        "facet_prompt_sha256": prompt_sha256(call.prompt_text),
        "ground_truth_model": ctx.ground_truth_model,
        "ground_truth_generated_at": ctx.generated_at,
        "split": split,
        "split_seed": ctx.split_seed,
        CONVERSATION_KEY: conversation_key(call.facet_name, call.preprocessed_text),
    }
    return DatasetRow(
        id=row_id_for(call.source_row_id, call.facet_name),
        input={"facet_name": call.facet_name, "preprocessed_text": call.preprocessed_text},
        expected=label,
        metadata=metadata,
        tags=[ROW_TAG, call.facet_name, final_bucket, split],
    )
