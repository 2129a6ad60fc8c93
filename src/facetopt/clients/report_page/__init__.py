"""The decision page of `facetopt report`: one self-contained HTML file (inline CSS and SVG, no script,
no font, nothing fetched) drawn from a comparison's data.

Entry points: `forest_plot_svg` (matplotlib, the forest plot as inline SVG) and `render_page` (jinja2,
the page). Both take plain data (dicts and lists, as the services' models dump them) and import their
library only when called, so `facetopt --help` never loads them. May import: the standard library,
jinja2, matplotlib.
"""

from facetopt.clients.report_page.forest import ForestRow, forest_plot_svg
from facetopt.clients.report_page.page import render_page

__all__ = ["ForestRow", "forest_plot_svg", "render_page"]
