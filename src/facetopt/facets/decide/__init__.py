"""Statistics and decisions: the scorers, per-facet metrics, paired deltas with their intervals,
the compare verdict, label agreement (kappa) and cost estimates.

Entry points: verdict.compare_by_facet, verdict.target_rule, metrics.metrics_by_facet,
agreement.cohen_kappa, agreement.broken_second_opinion, scorers (the eval's scores). May import: the standard library, pydantic,
domain, and the other facets groups.
"""
