"""Where a command's datasets, experiments and SQL live: the local store or Braintrust.

Entry points: `open_backend(settings)`, the one place the backend's name picks an
implementation, and the `Backend` protocol every service works through (services never
compare backend names). Implementations: `local` (the DuckDB store and NDJSON span exports,
over clients/local) and `braintrust` (logins per org, `/btql`, verified uploads, over
clients/braintrust). Backends are the leaves of the services layer: the workflows
(experiments, publish, dataset, eval, inspect) use them, never the reverse; what a backend
needs from above comes in as arguments (an `ExperimentResolver`, the store).
Modules: protocol (Backend and the values it returns), sources (the SpanSource protocol, NDJSON
spans), braintrust_source (spans over /btql, logins per org), braintrust_experiments (a
project's experiments as records), local_sql and braintrust_sql (`inspect sql`), publishers
(where `publish` sends functions).
May import: clients, facets, domain, settings, errors and its own modules; never another part of
services (tests/test_layering.py holds it).
"""

from __future__ import annotations

from collections.abc import Callable

from facetopt.services.backends.protocol import (
    Backend,
    ExperimentListing,
    ExperimentResolver,
    RowsUploaded,
    not_stored,
)
from facetopt.settings import Settings


def open_backend(settings: Settings, announce: Callable[[str], None] | None = None) -> Backend:
    """The backend the settings name (or the default: Braintrust when a key is set, else local);
    `announce` hears which, and why, when the user did not choose."""
    if announce is not None and (message := settings.backend_note()) is not None:
        announce(message)
    if settings.resolved_backend() == "braintrust":
        from facetopt.services.backends.braintrust import BraintrustBackend

        return BraintrustBackend(settings)
    from facetopt.services.backends.local import LocalBackend

    return LocalBackend(settings)


__all__ = ["Backend", "ExperimentListing", "ExperimentResolver", "RowsUploaded", "not_stored", "open_backend"]
