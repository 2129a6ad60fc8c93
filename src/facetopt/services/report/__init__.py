"""`facetopt report` (and `compare --html`): the decision page of one recorded comparison.

Entry points: `decision_report` (the page's data, the same document `--json` prints) and
`write_report_page` (the self-contained HTML file). May import: services.experiments
(registry, compare, decisions, inspect), clients (artifacts, report_page, local store), facets, domain.
"""

from facetopt.services.report.build import decision_report, report_for_compare
from facetopt.services.report.model import DecisionReport
from facetopt.services.report.write import check_page_path, write_report_page

__all__ = ["DecisionReport", "check_page_path", "decision_report", "report_for_compare", "write_report_page"]
