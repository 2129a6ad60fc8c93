"""A content-keyed cache of paid call results (eval model outputs, judge verdicts) in the store.

Entry point for every paid call that should never be paid twice (the eval's facet model and
judge today; audit and the optimiser's proposer later):

    cache = CallCache(store_path)             # None: no store, nothing cached
    cache.load([key, ...])                    # one short read of the store
    key = call_key(endpoint, model, content, trial=2)
    cache.get(key) / cache.put(key, "model", value, endpoint)
    cache.close()                             # commits what is still queued

The key is a sha256 over the endpoint (base URL or "simulated"), the model, the request content
(messages and parameters, or the judge's inputs) and the trial index, so trial 2 is never trial 1
replayed. Values are committed by a background writer in short transactions as they arrive
(clients/local/store.py `BatchWriter`), so an interrupted run keeps what it paid for and the
store is never held for long: the parent command and the eval runner never block each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facetopt.clients.llm.client import cache_key
from facetopt.clients.llm.endpoints import Endpoint


def call_key(endpoint: Endpoint, content: Any, params: dict[str, Any] | None = None, trial: int = 0) -> str:
    """The cache key of one call: endpoint, model, content (messages or inputs), parameters, trial."""
    return cache_key(endpoint.label, endpoint.model, content, {**(params or {}), "trial": trial})


class CallCache:
    def __init__(self, store_path: Path | None, read: bool = True):
        self.store_path = store_path
        self.read = read and store_path is not None
        self.entries: dict[str, Any] = {}
        self.hits = 0
        self._writer: Any = None

    def load(self, keys: list[str]) -> int:
        """Read the cached values of `keys` (one short read-only transaction); how many were found."""
        if not self.read or not keys or self.store_path is None or not Path(self.store_path).exists():
            return 0
        from facetopt.clients.local.store import LocalStore

        with LocalStore(self.store_path, read_only=True) as store:
            found = store.cached_calls(keys)
        self.entries.update(found)
        return len(found)

    def get(self, key: str) -> Any | None:
        value = self.entries.get(key) if self.read else None
        if value is not None:
            self.hits += 1
        return value

    def put(self, key: str, kind: str, value: Any, endpoint: Endpoint) -> None:
        if self.store_path is None:
            return
        if self._writer is None:
            from facetopt.clients.local.store import BatchWriter, write_calls

            self._writer = BatchWriter(Path(self.store_path), write_calls)
        self.entries[key] = value
        self._writer.put((key, kind, value, endpoint.model, endpoint.label))

    @property
    def error(self) -> BaseException | None:
        return self._writer.error if self._writer is not None else None

    def close(self) -> None:
        """Commit what is queued and stop the writer (a later put starts a new one)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
