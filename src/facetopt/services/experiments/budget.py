"""The experiment budget: per dataset and facet, a lifetime count of evals that read validation.

Every look at validation spends some of its honesty, whatever the verdict. Braintrust's guidance
for facet iteration is about five experiments before stopping to reflect, one hypothesis per
experiment; from the sixth validation eval of a facet on a dataset, `eval` and `compare` warn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EXPERIMENT_BUDGET = 5
GUIDANCE = "Braintrust's facet guidance: about five experiments, one hypothesis each, then stop and reflect"


def validation_evals(runs: Iterable[Mapping[str, str]], facets: Iterable[str]) -> dict[str, int]:
    """{facet: validation evals that included it} from each run's {facet: prompt sha}."""
    runs = list(runs)
    counts = {}
    for facet in facets:
        key = facet.casefold()
        counts[facet] = sum(any(name.casefold() == key for name in hashes) for hashes in runs)
    return counts


def budget_warnings(counts: Mapping[str, int], dataset: str) -> list[str]:
    """One warning per facet past the budget (from the sixth validation eval on)."""
    return [
        f"facet {facet}: validation eval number {count} on dataset {dataset!r}, past the budget of "
        f"{EXPERIMENT_BUDGET} ({GUIDANCE}): every look spends some of validation's honesty; edit against "
        "train failures, and confirm on fresh rows or a test split"
        for facet, count in sorted(counts.items())
        if count > EXPERIMENT_BUDGET
    ]
