"""`facetopt optimize`: propose, guard, screen and validate prompt edits for one facet.

Modules: model (options, candidates, spend, the report), spend (the call budget and its ledger),
propose (failure samples and the proposer's request and reply), screen (scoring a prompt on train
rows in-process, with the eval's request and cache keys), decide (the winner's one validation eval,
the verdict, apply or candidate.yaml), record (the run folder and `inspect optimize`), run (the
whole command). The guard's rules are pure and live in facets/prompts/prompt_guard.py.
May import: clients, facets, domain, settings, errors, services.backends, services.progress,
services.cost, services.eval and services.experiments (registry, budget, compare, decisions).
"""
