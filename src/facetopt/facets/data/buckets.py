"""Final facet values of a trace and the weak (pre-label) bucket of each facet call."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from facetopt.domain.spans import FacetCall
from facetopt.facets.data.text import bucket_of, decode_jsonish, pattern_for

_PUNCTUATION_RE = re.compile(r"[\W_]+")


def fold_facet_key(name: str) -> str:
    """A facet name with case and punctuation folded away: `Task_Name`, `task-name`, `Task name` agree."""
    return _PUNCTUATION_RE.sub("", name.casefold())


def match_final_value(facets: Mapping[str, Any] | None, facet_name: str) -> str | None:
    """A trace's final value for a facet: key matched exactly, case-insensitively, then punctuation-folded."""
    if not facets:
        return None
    key = _matching_key(facets, facet_name)
    if key is None:
        return None
    value = facets[key]
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _matching_key(facets: Mapping[str, Any], facet_name: str) -> str | None:
    if facet_name in facets:
        return facet_name
    folded = facet_name.casefold()
    for key in facets:
        if isinstance(key, str) and key.casefold() == folded:
            return key
    punctuation_folded = fold_facet_key(facet_name)
    for key in facets:
        if isinstance(key, str) and fold_facet_key(key) == punctuation_folded:
            return key
    return None


def newest_final_facets(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """{root_span_id: facets} from the newest row with a facets object per trace (first seen wins ties)."""
    newest: dict[str, tuple[tuple, dict[str, Any]]] = {}
    for row in rows:
        root = decode_jsonish(row.get("root_span_id"))
        facets = decode_jsonish(row.get("facets"))
        if not isinstance(root, str) or not isinstance(facets, dict):
            continue
        order = _created_order(row.get("created"))
        if root not in newest or order > newest[root][0]:
            newest[root] = (order, facets)
    return {root: facets for root, (_, facets) in newest.items()}


def _created_order(created: Any) -> tuple:
    """A sortable key for `created`; rows without one sort oldest."""
    if created is None or created == "":
        return (0,)
    if isinstance(created, datetime):
        moment = created
    else:
        text = str(created).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return (1, text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (2, moment.timestamp())


def assign_weak_buckets(
    calls: list[FacetCall],
    final_facets: Mapping[str, Mapping[str, Any]],
    patterns: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Set each call's weak bucket from the trace's final facet value, else from its production output.

    Returns how many calls each source decided: {"final_facet": n, "production_output": m}.
    """
    counts = {"final_facet": 0, "production_output": 0}
    for call in calls:
        pattern = pattern_for(patterns, call.facet_name)
        value = match_final_value(final_facets.get(call.root_span_id), call.facet_name)
        if value is not None:
            call.final_facet_value = value
            call.weak_bucket = bucket_of(value, pattern)
            call.weak_bucket_source = "final_facet"
        else:
            call.final_facet_value = None
            call.weak_bucket = bucket_of(call.production_output, pattern)
            call.weak_bucket_source = "production_output"
        counts[call.weak_bucket_source] += 1
    return counts
