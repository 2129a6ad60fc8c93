"""Pick which facet calls get labelled: one per (trace, facet), capped per (facet, weak bucket)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from facetopt.domain.spans import FacetCall
from facetopt.facets.data.text import bucket_of


class Sampler:
    """Walks calls in the given order (newest first), a batch at a time: a call is kept when its
    (trace, facet) pair is new and its (facet, weak bucket) count is under the limit. Whether a call
    is kept depends only on the calls before it, so batches give what one walk over all would."""

    def __init__(self, positive_limit: int, negative_limit: int, apply_limits: bool = True):
        self.limits = {"positive": max(positive_limit, 0), "negative": max(negative_limit, 0)}
        self.apply_limits = apply_limits
        self.seen_pairs: set[tuple[str, str]] = set()
        self.kept_per_bucket: Counter[tuple[str, str]] = Counter()

    def take(self, calls: Iterable[FacetCall]) -> list[FacetCall]:
        selected: list[FacetCall] = []
        for call in calls:
            facet = call.facet_name.casefold()
            pair = (call.root_span_id, facet)
            if pair in self.seen_pairs:
                continue
            bucket = call.weak_bucket or bucket_of(call.production_output)
            if self.apply_limits and self.kept_per_bucket[(facet, bucket)] >= self.limits[bucket]:
                continue
            self.seen_pairs.add(pair)
            self.kept_per_bucket[(facet, bucket)] += 1
            selected.append(call)
        return selected


def sample_calls(
    calls: list[FacetCall],
    positive_limit: int,
    negative_limit: int,
    apply_limits: bool = True,
) -> list[FacetCall]:
    """The calls one walk of a `Sampler` keeps (without limits only the pair rule applies)."""
    return Sampler(positive_limit, negative_limit, apply_limits).take(calls)
