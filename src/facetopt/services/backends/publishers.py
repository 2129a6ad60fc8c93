"""Where `facetopt publish` sends facet functions: Braintrust (insert, then read back), or, on the
local backend, a file under the output root. The evidence check and the result live above, in
services/publish/run.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from facetopt.clients import artifacts
from facetopt.errors import BraintrustError, FacetoptError, InputError
from facetopt.facets.prompts.publishing import readback_mismatches

FunctionStatus = Literal["published", "unchanged", "would_publish", "would_refuse", "written", "unverified"]
PublishOutcome = tuple[str | None, FunctionStatus, str | None]  # (function id, status, problem)


class Publisher(Protocol):
    """Where functions go: Braintrust, or a file on the local backend."""

    backend: str

    def project_id(self, project: str) -> str | None: ...

    def refusal(self, definitions: list[dict[str, Any]], project: str, if_exists: str) -> InputError | None:
        """What the real run would refuse for the functions already there (reads only)."""
        ...

    def publish(
        self, definitions: list[dict[str, Any]], if_exists: str, warnings: list[str]
    ) -> tuple[list[PublishOutcome], str | None]:
        """Send the definitions; per definition (function id, status, problem), and the file written if any."""
        ...


class BraintrustPublisher:
    """Register the project, refuse existing slugs under `--if-exists error`, insert, read back."""

    backend = "braintrust"

    def __init__(self, connect: Callable[[], Any]):
        self._connect = connect
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def project_id(self, project: str) -> str | None:
        from facetopt.clients.braintrust.functions import register_project

        return register_project(self._connection(), project)

    def refusal(self, definitions: list[dict[str, Any]], project: str, if_exists: str) -> InputError | None:
        from facetopt.clients.braintrust.functions import functions_with_slug
        from facetopt.clients.braintrust.lookup import resolve_project
        from facetopt.errors import NotFoundError

        if if_exists != "error":
            return None
        conn = self._connection()
        try:
            project_id = resolve_project(conn, project).id
        except NotFoundError:
            return None  # a new project holds no function yet
        for definition in definitions:
            existing = functions_with_slug(conn, project_id, definition["slug"])
            if existing:
                return _slug_taken(definition, existing[0].get("id"))
        return None

    def publish(
        self, definitions: list[dict[str, Any]], if_exists: str, warnings: list[str]
    ) -> tuple[list[PublishOutcome], str | None]:
        from facetopt.clients.braintrust.functions import functions_with_slug, insert_functions

        conn = self._connection()
        if if_exists == "error":
            for definition in definitions:
                existing = functions_with_slug(conn, definition["project_id"], definition["slug"])
                if existing:
                    raise _slug_taken(definition, existing[0].get("id"))
        try:
            reply = {f.get("slug"): f for f in insert_functions(conn, definitions)}
        except FacetoptError as error:
            # the reply may be lost after Braintrust stored the functions: what reads back decides
            if not self._all_stored(conn, definitions):
                raise
            warnings.append(
                f"the insert's reply was lost ({error.message}), but every function reads back as sent"
            )
            reply = {}
        return [
            self._verify(conn, d, reply.get(d["slug"], {}), if_exists, warnings) for d in definitions
        ], None

    def _all_stored(self, conn: Any, definitions: list[dict[str, Any]]) -> bool:
        try:
            return all(not readback_mismatches(d, self._read_back(conn, d, None)) for d in definitions)
        except FacetoptError:
            return False

    def _verify(
        self, conn: Any, definition: dict[str, Any], sent: dict[str, Any], if_exists: str, warnings: list[str]
    ) -> PublishOutcome:
        """After the insert: published when it reads back as sent, else unverified (never raised)."""
        try:
            stored = self._read_back(conn, definition, sent.get("id"))
        except FacetoptError as error:
            return sent.get("id"), "unverified", f"inserted, but it cannot be read back: {error.message}"
        problems = readback_mismatches(definition, stored)
        kept_existing = if_exists == "ignore" and bool(sent.get("found_existing"))
        if problems and kept_existing:
            warnings.append(
                f"{definition['slug']}: --if-exists ignore kept the existing function, which differs: "
                + "; ".join(problems)
            )
        elif problems:
            return (
                stored.get("id"),
                "unverified",
                "inserted, but it reads back different from what was sent: " + "; ".join(problems),
            )
        return stored.get("id"), "unchanged" if kept_existing else "published", None

    @staticmethod
    def _read_back(conn: Any, definition: dict[str, Any], function_id: str | None) -> dict[str, Any]:
        from facetopt.clients.braintrust.functions import functions_with_slug

        found = functions_with_slug(conn, definition["project_id"], definition["slug"])
        match = next((f for f in found if function_id and f.get("id") == function_id), None)
        if match is None and found:
            match = found[0]
        if match is None:
            raise BraintrustError(
                f"function {definition['slug']!r} was accepted but cannot be read back",
                hint="check the project in the Braintrust UI, then publish again",
            )
        return match


def _slug_taken(definition: dict[str, Any], function_id: Any) -> InputError:
    return InputError(
        f"a function with slug {definition['slug']!r} already exists in project "
        f"{definition['metadata']['project']!r} (id {function_id})",
        hint="pass --if-exists replace to overwrite it, or --slug to publish under another slug",
    )


class LocalPublisher:
    """The local backend has no production to publish to: write what would be sent, and say so."""

    backend = "local"

    def __init__(self, output_root: Path):
        self.output_root = output_root

    def project_id(self, project: str) -> str | None:
        return None

    def refusal(self, definitions: list[dict[str, Any]], project: str, if_exists: str) -> InputError | None:
        return None

    def publish(
        self, definitions: list[dict[str, Any]], if_exists: str, warnings: list[str]
    ) -> tuple[list[PublishOutcome], str | None]:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.output_root / "published" / f"{stamp}-functions.json"
        artifacts.write_text(path, json.dumps({"functions": definitions}, indent=2) + "\n")
        return [(None, "written", None) for _ in definitions], str(path)
