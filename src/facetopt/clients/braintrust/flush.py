"""A flush of the braintrust SDK's log writes that ends in bounded time, and lets Ctrl-C through.

The SDK's `flush()` waits on its own thread pool for every batch, retrying, with no overall bound.
Here it runs on a daemon thread while the calling thread waits in short steps: past the deadline,
or on Ctrl-C, facetopt abandons Braintrust (http.abandon: no further request is sent, the SDK's
threads wind down) and raises; the user hears about a long wait while it lasts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from facetopt.clients.braintrust.waiting import waiting
from facetopt.errors import UploadVerificationError

STEP_S = 0.1


class FlushDeadlineError(UploadVerificationError):
    """Braintrust did not take the writes within the flush deadline."""


def bounded_flush(flush: Callable[[], None], what: str, deadline: float | None) -> None:
    """Run `flush()`; re-raise what it raises; FlushDeadlineError past `deadline` seconds."""
    from facetopt.clients.braintrust.http import abandon

    outcome: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            flush()
        except BaseException as exc:  # handed to the waiting thread
            outcome.append(exc)
        finally:
            done.set()

    started = time.monotonic()
    limit = f" of {deadline:g}s, --flush-deadline" if deadline is not None else ""
    worker = threading.Thread(target=run, name="facetopt-flush", daemon=True)
    try:
        with waiting(lambda s: f"waiting for Braintrust to take {what} ({s:.0f}s{limit})"):
            worker.start()
            while not done.wait(STEP_S):
                if deadline is not None and time.monotonic() - started > deadline:
                    abandon()
                    raise FlushDeadlineError(
                        f"Braintrust did not take {what} within the flush deadline ({deadline:g}s, --flush-deadline)",
                        hint="the rows are kept in the run folder; upload them again with "
                        "`facetopt dataset upload --run-dir <run folder>`",
                    )
    except KeyboardInterrupt:
        abandon()
        raise
    if outcome:
        raise outcome[0]
