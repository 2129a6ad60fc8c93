"""Telling the user that facetopt is waiting on Braintrust, without the client printing anything.

Notices are INFO records of the `facetopt.waiting` logger, which the CLI prints on stderr. A
`waiting(...)` block reports after NOTE_AFTER_S seconds, then every NOTE_EVERY_S seconds, from a
daemon timer thread, so a single blocked request is reported too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

NOTE_AFTER_S = 3.0
NOTE_EVERY_S = 10.0
LOGGER = "facetopt.waiting"  # the CLI shows this logger's INFO records on stderr

log = logging.getLogger(LOGGER)


def report(text: str) -> None:
    log.info("%s", text)


@contextlib.contextmanager
def waiting(describe: Callable[[float], str]) -> Iterator[None]:
    """While the block runs, `report(describe(seconds waited))` after a few seconds, then regularly."""
    started = time.monotonic()
    done = threading.Event()

    def watch() -> None:
        delay = NOTE_AFTER_S
        while not done.wait(delay):
            report(describe(time.monotonic() - started))
            delay = NOTE_EVERY_S

    watcher = threading.Thread(target=watch, name="facetopt-waiting", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
