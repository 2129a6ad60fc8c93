"""The deterministic simulated models: labeller, facet model and Factuality judge.

They are not clients of anything: `transport.SimulatedTransport` answers OpenAI-compatible chat
requests in-process, and only `facetopt.clients.llm` mounts it (for a role with no endpoint and
no key, or base URL `simulated://`). Services and the CLI never import this package.
Modules: transport (the httpx transport and request routing), labeller (ground-truth answers),
facet_model (the facet model and its documented failure mode), judge (Factuality choices).
May import: facets (pure text rules), errors.
"""
