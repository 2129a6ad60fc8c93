"""The Braintrust client: login per org, project/dataset/experiment lookups, SQL over `/btql`,
verified dataset uploads, and the `bt eval` runner wrapper.

Modules: api (login, the logged-in connection, `btql`), lookup (projects, datasets,
experiments), sql (query text and paged fetches), table_names (names in user SQL to ids),
datasets (upload and read-back), bt_runner (runs `bt eval`, or the SDK's runner without bt). Import the names below from this package;
`bt_runner` is imported as its own module (it needs no SDK).
May import: domain, facets, settings, errors, clients.artifacts.
"""

from facetopt.clients.braintrust.api import btql, connect
from facetopt.clients.braintrust.connection import BraintrustConnection
from facetopt.clients.braintrust.datasets import (
    UploadResult,
    fetch_dataset_events,
    read_dataset_rows,
    upload_rows,
    verify_rows,
)
from facetopt.clients.braintrust.lookup import (
    UUID_RE,
    Project,
    get_experiment,
    list_experiments,
    resolve_dataset_id,
    resolve_experiment_id,
    resolve_project,
)
from facetopt.clients.braintrust.sql import (
    SourceSpanFetch,
    count_experiment_results,
    fetch_experiment_rows,
    fetch_final_facets,
    fetch_source_spans,
    final_facets_sql,
    source_query_sql,
    sql_string,
)
from facetopt.clients.braintrust.table_names import with_object_ids

__all__ = [
    "UUID_RE",
    "BraintrustConnection",
    "Project",
    "SourceSpanFetch",
    "UploadResult",
    "btql",
    "connect",
    "count_experiment_results",
    "fetch_dataset_events",
    "fetch_experiment_rows",
    "fetch_final_facets",
    "fetch_source_spans",
    "get_experiment",
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
    "with_object_ids",
]
