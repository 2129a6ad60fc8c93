"""Pick which facet calls get labelled: one per (trace, facet), capped per (facet, weak bucket)."""

from __future__ import annotations

from collections import Counter

from facetopt.domain.spans import FacetCall
from facetopt.facets.data.text import bucket_of


def sample_calls(
    calls: list[FacetCall],
    positive_limit: int,
    negative_limit: int,
    apply_limits: bool = True,
) -> list[FacetCall]:
    """Walk calls in the given order (newest first); keep a call when its (trace, facet) pair is new
    and its (facet, weak bucket) count is under the limit. Without limits only the pair rule applies."""
    limits = {"positive": max(positive_limit, 0), "negative": max(negative_limit, 0)}
    seen_pairs: set[tuple[str, str]] = set()
    kept_per_bucket: Counter[tuple[str, str]] = Counter()
    selected: list[FacetCall] = []
    for call in calls:
        facet = call.facet_name.casefold()
        pair = (call.root_span_id, facet)
        if pair in seen_pairs:
            continue
        bucket = call.weak_bucket or bucket_of(call.production_output)
        if apply_limits and kept_per_bucket[(facet, bucket)] >= limits[bucket]:
            continue
        seen_pairs.add(pair)
        kept_per_bucket[(facet, bucket)] += 1
        selected.append(call)
    return selected
