"""`bt eval evals/eval_facet.py` from a checkout; the eval ships in the package (facetopt.eval_entry)."""

import facetopt.eval_entry  # noqa: F401
