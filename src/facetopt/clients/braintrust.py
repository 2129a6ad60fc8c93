"""The Braintrust client: login per org, project/dataset/experiment lookups, SQL over `/btql`,
and verified dataset uploads. The code lives in braintrust_api, braintrust_lookup,
braintrust_sql and braintrust_datasets; this module is the one to import."""

from facetopt.clients.braintrust_api import BraintrustConnection, btql, connect
from facetopt.clients.braintrust_datasets import (
    UploadResult,
    fetch_dataset_events,
    read_dataset_rows,
    upload_rows,
    verify_rows,
)
from facetopt.clients.braintrust_lookup import (
    UUID_RE,
    Project,
    list_experiments,
    resolve_dataset_id,
    resolve_experiment_id,
    resolve_project,
)
from facetopt.clients.braintrust_sql import (
    SourceSpanFetch,
    fetch_experiment_rows,
    fetch_final_facets,
    fetch_source_spans,
    final_facets_sql,
    source_query_sql,
    sql_string,
)

__all__ = [
    "UUID_RE",
    "BraintrustConnection",
    "Project",
    "SourceSpanFetch",
    "UploadResult",
    "btql",
    "connect",
    "fetch_dataset_events",
    "fetch_experiment_rows",
    "fetch_final_facets",
    "fetch_source_spans",
    "final_facets_sql",
    "list_experiments",
    "read_dataset_rows",
    "resolve_dataset_id",
    "resolve_experiment_id",
    "resolve_project",
    "source_query_sql",
    "sql_string",
    "upload_rows",
    "verify_rows",
]
