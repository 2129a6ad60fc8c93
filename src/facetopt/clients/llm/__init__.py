"""The LLM client: every paid model call (labeller, facet model, judge) goes through here.

Entry points: `client.make_async_client`, `client.chat_once`, `client.make_sync_client`,
`client.chat_text`; `endpoints.resolve_labeller` / `resolve_facet_model` / `resolve_judge` turn
settings into an `Endpoint` (base URL, key, model, or simulated).

This is the only package that imports `facetopt.simulation`: a simulated endpoint is served by
an httpx transport inside the client (`simulated_transport`), so services never know a role is
simulated. The transport module imports httpx2 at top level: import it inside functions.
May import: domain, facets, settings, errors, simulation, clients.redaction.
"""
