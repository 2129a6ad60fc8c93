"""Clients: one sub-package per outside system, each raising FacetoptError (never typer.Exit).

- braintrust/   the Braintrust API (login per org, lookups, SQL over /btql, dataset upload and
                read-back) and the `bt eval` runner wrapper (bt_runner)
- llm/          the OpenAI-compatible chat client every paid model call goes through, and the
                endpoint resolution of each role (labeller, facet model, judge)
- local/        DuckDB: the NDJSON span source, the local store, the Braintrust-to-DuckDB SQL dialect
- prompt_file/  the editable prompt file (round-trip safe edits with ruamel.yaml)
- artifacts: atomic file writes, shared by all of the above (secret masking is in facetopt.errors)

Clients may import domain, facets, settings and errors; never services or cli. Heavy libraries
(braintrust, openai, duckdb, sqlglot, ruamel.yaml) are imported only here, inside functions.
"""
