"""`facetopt publish`: a kept prompt goes back to production as facet functions.

Entry points: run (`publish_prompt_file`, `run_publish`: the evidence check, then the
publisher of the command's backend, then the record in the store), evidence (`facet_evidence`:
what a facet's prompt was evaluated in, and what was decided about it).
May import: services.experiments, services.backends, clients, facets, domain, settings, errors.
"""
