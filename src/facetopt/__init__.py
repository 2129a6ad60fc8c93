"""facetopt: facet prompt optimisation with evidence."""

__version__ = "0.1.0"
