"""A forest plot of paired deltas: one row per facet and metric, the 95% interval as a bar, the
point estimate as a dot, zero and minus the guard margin as vertical lines, coloured by verdict."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

VERDICT_COLOURS = {"KEEP": "#1a7f37", "REJECT": "#cf222e", "INCONCLUSIVE": "#9a6700"}
NEUTRAL = "#57606a"


@dataclass(frozen=True)
class ForestRow:
    label: str  # "issues: recall (n=40)"
    delta: float
    ci_low: float | None
    ci_high: float | None
    verdict: str  # the facet's verdict: the row's colour
    role: str  # "target", "guard" or "shown": target rows are filled, the others open


def forest_plot_svg(rows: list[ForestRow], margin: float, title: str = "") -> str:
    """The plot as an `<svg>` element, text kept as text (searchable, no embedded font)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt

    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "facetopt", "font.size": 9, "font.family": "sans-serif"}
    ):
        height = 0.9 + 0.28 * max(len(rows), 1)
        figure, axes = plt.subplots(figsize=(7.0, height))
        try:
            _draw(axes, rows, margin, title)
            figure.tight_layout()
            buffer = io.StringIO()
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        finally:
            plt.close(figure)
    return _inline(buffer.getvalue())


def _draw(axes, rows: list[ForestRow], margin: float, title: str) -> None:
    positions = list(range(len(rows)))[::-1]  # the first row on top
    for y, row in zip(positions, rows, strict=True):
        colour = VERDICT_COLOURS.get(row.verdict, NEUTRAL)
        if row.ci_low is not None and row.ci_high is not None:
            axes.hlines(y, row.ci_low, row.ci_high, colors=colour, linewidth=2.2)
        filled = row.role == "target"
        axes.plot(
            [row.delta],
            [y],
            marker="D" if filled else "o",
            markersize=6 if filled else 5,
            color=colour,
            markerfacecolor=colour if filled else "white",
            markeredgewidth=1.5,
            linestyle="none",
        )
    axes.axvline(0.0, color="#24292f", linewidth=1.0)
    if margin > 0:
        axes.axvline(-margin, color=VERDICT_COLOURS["REJECT"], linewidth=1.0, linestyle="--")
        axes.text(
            -margin,
            len(rows) - 0.35,
            f"-{margin:g} guard margin",
            ha="right",
            va="bottom",
            fontsize=8,
            color=VERDICT_COLOURS["REJECT"],
        )
    axes.set_yticks(positions, [row.label for row in rows])
    axes.set_ylim(-0.7, len(rows) - 0.1 + (0.5 if margin > 0 else 0))
    axes.set_xlabel("candidate - baseline (95% interval)")
    axes.grid(axis="x", color="#d0d7de", linewidth=0.5)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if title:
        axes.set_title(title, fontsize=10, loc="left")


_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)


def _inline(svg: str) -> str:
    """Drop the XML prologue and doctype (not allowed inside HTML), the RDF metadata block (its
    namespace URLs look like references to a reader checking the page) and the fixed size, so the
    picture scales with the page (the viewBox keeps its shape)."""
    svg = _XML_PROLOGUE.sub("", svg, count=1)
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, count=1, flags=re.DOTALL)
    svg = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"', r"\1", svg, count=1)
    svg = re.sub(r'(<svg[^>]*?)\sheight="[^"]*"', r"\1", svg, count=1)
    return svg.replace("<svg ", '<svg role="img" aria-label="forest plot of the paired deltas" ', 1)
