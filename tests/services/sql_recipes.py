"""The original facet-optimizer README's SQL recipes, unchanged but for the experiment id: they must
answer on facetopt's experiments, on Braintrust (`bt sql`) and locally (`facetopt inspect sql`)."""

PER_FACET_BINARY = (
    "SELECT input.metadata.facet_name AS facet, avg(scores.binary_decision_match) AS binary_decision_match, "
    "avg(scores.positive_recall) AS positive_recall, avg(scores.negative_specificity) AS negative_specificity, "
    "count(*) AS n FROM experiment('{experiment}') "
    "WHERE span_attributes.name = 'binary_classification_scores' GROUP BY input.metadata.facet_name"
)
FACTUALITY_BY_FACET = (
    "SELECT input.metadata.facet_name AS facet, avg(output.score) AS factuality, count(*) AS n "
    "FROM experiment('{experiment}') WHERE span_attributes.name = 'Factuality' "
    "GROUP BY input.metadata.facet_name"
)
FAILED_ROWS = (
    "SELECT input.metadata.dataset_row_id AS dataset_row_id, input.metadata.split AS split, "
    "input.expected AS expected, input.output AS output FROM experiment('{experiment}') "
    "WHERE span_attributes.name = 'binary_classification_scores' "
    "AND input.metadata.facet_name = '{facet}' AND scores.binary_decision_match = 0"
)


def by_facet(rows: list[dict]) -> dict[str, dict]:
    return {row["facet"]: row for row in rows}
