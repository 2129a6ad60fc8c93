"""The Backend protocol every service works through, the values it returns, and what a backend
needs passed in from above (an `ExperimentResolver`). Implementations: local.py, braintrust.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from facetopt.errors import NotFoundError

if TYPE_CHECKING:
    from facetopt.clients.local.store import LocalStore
    from facetopt.domain.dataset import DatasetRow
    from facetopt.domain.experiments import EvalRow, ExperimentRecord
    from facetopt.domain.sql import SqlResult
    from facetopt.services.backends.publishers import Publisher
    from facetopt.services.backends.sources import SpanSource

ExperimentResolver = Callable[[str], "ExperimentRecord"]
"""An experiment reference (id, name, latest, previous) to its record: `Experiments.resolve`,
passed down by the workflow that knows the command's scope."""


@dataclass
class RowsUploaded:
    """Dataset rows written and proved by reading them back (id and expected of every row)."""

    written: int
    verified: int
    dataset_id: str | None = None
    org: str | None = None
    dataset_rows: int | None = None  # rows the dataset holds after the upload (earlier runs' too)


@dataclass
class ExperimentListing:
    """`inspect experiments`: experiments newest first; `project` is the Braintrust project listed
    (None: the registry alone); `more` says older ones exist beyond the limit."""

    records: list[ExperimentRecord] = field(default_factory=list)
    project: str | None = None
    more: bool = False
    notes: list[str] = field(default_factory=list)


class Backend(Protocol):
    """One command's backend. `name` is for reports and the experiment registry only; `remote`
    says that writes leave this machine (what --skip-upload and --no-send-logs turn off)."""

    name: str
    remote: bool

    # dataset rows
    def span_source(self, *, no_writes: bool) -> SpanSource:
        """Where `dataset create` reads facet spans; with `no_writes` (dry run, --skip-upload) a
        remote backend does not contact the dataset's org."""
        ...

    def dataset_rows(self, project: str, dataset: str, *, must_exist: bool = False) -> list[DatasetRow]:
        """A dataset's rows in id order; `must_exist` turns an empty local dataset into NotFoundError."""
        ...

    # upload
    def upload_rows(
        self, project: str, dataset: str, rows: Sequence[DatasetRow], *, retry: str | None = None
    ) -> RowsUploaded:
        """Write the rows and verify every one by reading back; UploadVerificationError when some did
        not arrive (`retry` becomes its hint where the rows can simply be sent again)."""
        ...

    # experiments
    def experiments(self, store: LocalStore | None) -> list[ExperimentRecord]:
        """The experiments `latest`, names and ids choose among, newest first: Braintrust lists the
        project's (whoever ran them) merged with the registry; local gives the registry."""
        ...

    def experiment_listing(self, store: LocalStore | None, limit: int | None) -> ExperimentListing:
        """The newest `limit` (None: all) of `experiments`, read only as far as needed."""
        ...

    def experiment_by_id(self, experiment_id: str) -> ExperimentRecord | None:
        """An experiment outside `experiments` named by its full id (another project of the org);
        None when the backend cannot reach beyond them."""
        ...

    def experiments_where(self) -> str:
        """Where `experiments` come from, for messages ("the registry", "project 'X' and the registry")."""
        ...

    def experiment_rows(self, record: ExperimentRecord) -> list[EvalRow]:
        """The rows of an experiment whose rows are not in the local store."""
        ...

    def confirmed_results(self, experiment_id: str) -> int | None:
        """Eval cases (root spans with their output) the backend holds for a logged experiment;
        None when experiments are not logged remotely."""
        ...

    def experiment_project_id(self, project: str) -> str | None:
        """The id of the project receiving logged experiments (created when missing); None when
        experiments are not logged remotely."""
        ...

    # SQL
    def sql(self, sql: str, resolve: ExperimentResolver, store: LocalStore | None) -> SqlResult:
        """`inspect sql`: Braintrust-dialect SQL over this backend's datasets and experiments;
        `resolve` names the experiments its `experiment('...')` calls mean."""
        ...

    # publishing
    def publisher(self) -> Publisher:
        """Where `facetopt publish` sends facet functions (locally: a file under the output root)."""
        ...


def not_stored(record: ExperimentRecord) -> NotFoundError:
    """An experiment whose rows only the local store ever held, and it does not hold them."""
    return NotFoundError(
        f"the rows of experiment {record.experiment_name!r} ({record.experiment_id}) "
        "are not in the local store",
        hint="re-run `facetopt eval`; the local store may have been replaced",
    )
