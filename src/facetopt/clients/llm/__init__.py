"""The LLM client: every paid model call (labeller, facet model, judge; later audit, cost
tracking and the optimiser's proposer) goes through here.

Entry points:
- Clients: `client.make_chat_client` (plain-HTTP chat completions for `chat_once` and
  `chat_runs.run_chat_requests` / `run_chat_stream`), `client.make_async_client` /
  `make_sync_client` (openai SDK clients, e.g. for autoevals). Every client made for an endpoint
  sends through that (endpoint, model)'s rate-limit policy, so new roles get rate learning and
  retries-until-deadline for free.
- The policy: `rate_limit.policy_for(endpoint_label, model)` (learned rate, 429 count, stats for
  progress lines); `rate_limit.PolicyTransport` wraps any httpx2 transport (e.g. Braintrust REST).
- The cache: `call_cache.CallCache` and `call_cache.call_key` keep paid results in the local
  store by content (endpoint, model, request, trial), committed in short transactions.
- `endpoints.resolve_labeller` / `resolve_facet_model` / `resolve_judge` turn settings into an
  `Endpoint` (base URL, key, model, or simulated). docs/long-runs.md describes the behaviour.

This is the only package that imports `facetopt.simulation`: a simulated endpoint is served by
an httpx transport inside the client (`simulated_transport`), so services never know a role is
simulated. The transport modules (`transport`, `chat_http`, `simulated_transport`) import httpx2
at top level: import them inside functions.
May import: domain, facets, settings, errors, simulation, clients.local (the
call cache's store).
"""
