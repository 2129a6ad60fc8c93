"""`bt eval evals/eval_facet.py` from a checkout; the eval ships in the package (facetopt.eval_facet)."""

import facetopt.eval_facet  # noqa: F401
