"""The deterministic simulated models: labeller, facet model and Factuality judge.

They are not clients of anything: `transport.answer` answers OpenAI-compatible chat requests,
and only `facetopt.clients.llm` reaches it, through its in-process HTTP transport (for a role with
no endpoint and no key, or base URL `simulated://`). Services and the CLI never import this package.
Modules: transport (request routing and response bodies), labeller (ground-truth answers),
facet_model (the facet model and its documented failure mode), judge (Factuality choices), proposer (the optimiser's prompt edits).
May import: facets (pure text rules), domain, settings, errors; the standard library only.
"""
