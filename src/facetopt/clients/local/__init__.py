"""The embedded local backend, all DuckDB.

Entry points: `source.LocalSource` (NDJSON span exports and `bt sync pull` folders; the DuckDB
plumbing is in `source_duckdb`), `store.LocalStore` (`store.duckdb`: local datasets, label cache,
experiments, registry, prompt history; opening, locking and the schema in `store_connection`, the
registry's tables in `store_experiments`), `sql_dialect.to_duckdb_where` / `to_duckdb_query`
(Braintrust's SQL dialect rewritten for DuckDB with sqlglot), `sql.run_store_sql` (the DuckDB
work of `inspect sql` over the store).
May import: domain, facets, settings, errors, clients.braintrust.sql (query text only), sample.
"""
